from __future__ import annotations

from django.urls import path

from portal import backup_views, lock_place_views, people_code_views
from portal import lock_views as views

app_name = "locks"
urlpatterns = [
    path("locks/", views.lock_list, name="lock_list"),
    path("locks/unassigned/", lock_place_views.lock_unassigned, name="lock_unassigned"),
    path("locks/<int:lock_id>/", views.lock_detail, name="lock_detail"),
    path("locks/<int:lock_id>/place/", lock_place_views.lock_place_view, name="lock_place"),
    path("locks/<int:lock_id>/stop-managing/", lock_place_views.lock_release_view, name="lock_release"),
    path("locks/<int:lock_id>/act/<slug:action>/", views.lock_action, name="lock_action"),
    path("locks/<int:lock_id>/retry-failed/", views.lock_retry_failed, name="lock_retry_failed"),
    path("properties/<int:property_id>/retry-failed/", views.property_retry_failed, name="property_retry_failed"),
    path("locks/<int:lock_id>/delete-all/", views.lock_delete_all, name="lock_delete_all"),
    path("locks/<int:lock_id>/work/", views.lock_work_panel, name="lock_work"),
    path("locks/<int:lock_id>/people-codes/new/", people_code_views.people_code_new_on_lock,
         name="people_code_new_on_lock"),
    path("properties/<int:property_id>/people-codes/new/", people_code_views.people_code_new_on_property,
         name="people_code_new_on_property"),
    path("people-codes/<int:person_code_id>/edit/", people_code_views.people_code_edit, name="people_code_edit"),
    path("people-codes/<int:person_code_id>/remove/", people_code_views.people_code_remove, name="people_code_remove"),
    path("bookings/<int:booking_id>/backup/<int:lock_id>/", backup_views.backup_hand_out, name="backup_hand_out"),
    path("issues/", views.issue_list, name="issue_list"),
    path("issues/<int:issue_id>/act/<slug:action>/", views.issue_action, name="issue_action"),
    path("codes/<int:code_id>/chip/", views.code_chip, name="code_chip"),
    path("codes/<int:code_id>/reveal/", views.code_reveal, name="code_reveal"),
    path("codes/<int:code_id>/act/<slug:action>/", views.code_action, name="code_action"),
    path("codes/<int:code_id>/new-pin/", views.code_new_pin_preview, name="code_new_pin_preview"),
]
