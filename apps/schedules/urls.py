"""Routes of the schedules API under ``/api/v1/``; ``add`` and ``templates`` come before ``<schedule_id>``."""

from __future__ import annotations

from django.urls import path

from apps.schedules.api import views

urlpatterns = [
    path("schedules", views.ScheduleListView.as_view(), name="schedules"),
    path("schedules/add", views.ScheduleAddView.as_view(), name="schedule-add"),
    path("schedules/templates", views.TemplatesView.as_view(), name="schedule-templates"),
    path("schedules/<str:schedule_id>", views.ScheduleDetailView.as_view(), name="schedule"),
    path("schedules/<str:schedule_id>/pause", views.PauseView.as_view(), name="schedule-pause"),
    path("schedules/<str:schedule_id>/resume", views.ResumeView.as_view(), name="schedule-resume"),
    path("schedules/<str:schedule_id>/stop", views.StopView.as_view(), name="schedule-stop"),
    path("schedules/<str:schedule_id>/preview", views.PreviewView.as_view(), name="schedule-preview"),
    path("schedules/<str:schedule_id>/backfill", views.BackfillView.as_view(), name="schedule-backfill"),
    path("backfills/<str:backfill_id>", views.BackfillDetailView.as_view(), name="backfill"),
]
