"""The Celery application. Tasks live in each app's `tasks.py`.

Celery's own hook signals carry the request id into tasks, time and count every task, keep
Django's logging and serve worker metrics (core/task_hooks.py).
"""

import os

from celery import Celery, signals

from core import task_hooks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("rankwell")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

signals.before_task_publish.connect(task_hooks.add_request_context_headers)
signals.task_prerun.connect(task_hooks.task_started)
signals.task_postrun.connect(task_hooks.task_finished)
signals.task_retry.connect(task_hooks.task_retried)
signals.task_failure.connect(task_hooks.task_failed)
signals.setup_logging.connect(task_hooks.keep_django_logging)
signals.worker_init.connect(task_hooks.serve_metrics)
signals.beat_init.connect(task_hooks.serve_metrics)
