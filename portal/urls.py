from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import (
    activity_export,
    api_key_views,
    csv_import_views,
    guest_views,
    invitation_views,
    message_views,
    oauth_views,
    owner_views,
    property_views,
    settings_views,
    two_factor_views,
    views,
)
from portal.password_tokens import set_password_token_generator

tenant_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("properties/", views.property_list, name="property_list"),
    path("properties/new/", property_views.property_create, name="property_create"),
    path("properties/<int:property_id>/", views.property_detail, name="property_detail"),
    path("properties/<int:property_id>/edit/", property_views.property_edit, name="property_edit"),
    path("properties/<int:property_id>/archive/", property_views.property_archive, name="property_archive"),
    path("properties/<int:property_id>/feeds/new/", property_views.feed_create, name="feed_create"),
    path("properties/<int:property_id>/feeds/<int:feed_id>/sync/", property_views.feed_sync, name="feed_sync"),
    path("properties/<int:property_id>/feeds/<int:feed_id>/remove/", property_views.feed_delete,
         name="feed_delete"),
    path("properties/<int:property_id>/conflicts/<int:conflict_id>/dismiss/", property_views.conflict_dismiss_view,
         name="conflict_dismiss"),
    path("bookings/", views.booking_list, name="booking_list"),
    path("bookings/new/", views.booking_create, name="booking_create"),
    path("bookings/import/", csv_import_views.csv_import, name="csv_import"),
    path("bookings/import/confirm/", csv_import_views.csv_import_confirm, name="csv_import_confirm"),
    path("bookings/<int:booking_id>/", views.booking_detail, name="booking_detail"),
    path("bookings/<int:booking_id>/edit/", views.booking_edit, name="booking_edit"),
    path("bookings/<int:booking_id>/cancel/", views.booking_cancel, name="booking_cancel"),
    path("bookings/<int:booking_id>/guest-link/", guest_views.guest_link_new, name="guest_link_new"),
    path("bookings/<int:booking_id>/guest-link/off/", guest_views.guest_link_off, name="guest_link_off"),
    path("bookings/<int:booking_id>/messages/send/", message_views.message_send_now_view, name="message_send_now"),
    path("bookings/<int:booking_id>/messages/<int:message_id>/resend/", message_views.message_resend_view,
         name="message_resend"),
    path("activity/export/", activity_export.activity_export_page, name="activity_export"),
    path("activity/export.csv", activity_export.activity_export_csv, name="activity_export_csv"),
    path("owner/", owner_views.owner_home, name="owner_home"),
    path("settings/", settings_views.settings_home, name="settings"),
    path("settings/members/", settings_views.member_list, name="settings_members"),
    path("settings/members/<int:member_id>/", settings_views.member_edit, name="settings_member_edit"),
    path("settings/members/<int:member_id>/remove/", settings_views.member_remove, name="settings_member_remove"),
    path(
        "settings/invitations/<int:invitation_id>/revoke/",
        settings_views.invitation_revoke,
        name="settings_invitation_revoke",
    ),
    path("settings/defaults/", settings_views.tenant_defaults, name="settings_defaults"),
    path("settings/messages/", message_views.message_templates, name="message_templates"),
    path("settings/api-keys/", api_key_views.api_key_list, name="api_key_list"),
    path("settings/api-keys/<int:key_id>/revoke/", api_key_views.api_key_revoke_view, name="api_key_revoke"),
    path("", include("portal.lock_urls")),
    path("providers/", include("portal.account_urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("invitations/<str:token>/", invitation_views.invitation_accept, name="invitation_accept"),
    # The guest page: no login; the token is the key (portal/guest_views.py).
    path("g/<str:token>/", guest_views.guest_page, name="guest_page"),
    path("g/<str:token>/report/", guest_views.guest_report, name="guest_report"),
    # Twilio's signed delivery reports for guest texts (portal/message_views.py).
    path("sms/twilio/status/<int:message_id>/", message_views.twilio_status, name="twilio_status"),
    # The one OAuth redirect URI registered with every vendor (portal/oauth_views.py).
    path("oauth/callback/", oauth_views.oauth_callback, name="oauth_callback"),
    path("account/two-factor/", two_factor_views.two_factor_home, name="two_factor_home"),
    path("account/two-factor/setup/", two_factor_views.two_factor_setup, name="two_factor_setup"),
    path("account/two-factor/verify/", two_factor_views.two_factor_verify, name="two_factor_verify"),
    path("account/two-factor/recovery-codes/", two_factor_views.recovery_codes_new, name="two_factor_recovery_codes"),
    path("account/two-factor/off/", two_factor_views.two_factor_off, name="two_factor_off"),
    path("account/sessions/end-others/", two_factor_views.sessions_end, name="sessions_end_others"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(template_name="registration/password_change.html"),
        name="password_change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/password_change_done.html"),
        name="password_change_done",
    ),
    # Set-password links (accounts made by the old invite page may still hold one). Their tokens die when
    # the user's memberships change, not only when the password does (portal/password_tokens.py).
    path(
        "set-password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="settings/set_password.html", token_generator=set_password_token_generator
        ),
        name="password_reset_confirm",
    ),
    path(
        "set-password/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="settings/set_password_done.html"),
        name="password_reset_complete",
    ),
    path("t/<slug:tenant_slug>/", include(tenant_patterns)),
    path("api/", include("portal.api_urls")),
    path("webhooks/", include("providers.webhook_urls")),
    path("django-admin/", admin.site.urls),
]

# Styled pages inside the layout; with DEBUG on, portal.error_pages.FriendlyNotFoundMiddleware keeps
# Django's technical 404 (the site's URL list) from users too.
handler403 = "portal.error_pages.forbidden"
handler404 = "portal.error_pages.not_found"
