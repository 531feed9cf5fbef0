"""Set-password links that die when the user's memberships change (DESIGN §9).

Django's reset token already dies when the password or last login changes. A link handed out while an
account belonged to one team must also die once the account joins, leaves or changes role in any team:
otherwise whoever saw the link could set the password of an account that now reaches further.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator

from portal.models import Membership


class MembershipTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "portal.password_tokens.MembershipTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        memberships = (
            Membership.objects.filter(user_id=user.pk).order_by("pk").values_list("pk", "tenant_id", "role")
        )
        state = ";".join(f"{pk}:{tenant}:{role}" for pk, tenant, role in memberships)
        return f"{super()._make_hash_value(user, timestamp)}|{state}"


set_password_token_generator = MembershipTokenGenerator()
