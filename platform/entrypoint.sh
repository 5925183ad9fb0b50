#!/bin/sh
# The image's entry point: one role per container.
#   api          gunicorn serving Django (platform/gunicorn.conf.py)
#   worker       a Celery worker on the default, signals and ranklog queues
#   trainer      a Celery worker on the training queue, one task at a time (model training)
#   beat         Celery beat, the scheduler (run exactly one)
#   migrate      apply database migrations, then exit (a one-off task before each deploy)
#   healthcheck  the container health check of whichever role runs
#   anything else is executed as given (e.g. `python manage.py create_customer ...`)
set -eu
cd /app
role="${1:-api}"
export RANKWELL_ROLE="${RANKWELL_ROLE:-$role}"

case "$role" in
  api)
    exec gunicorn --config platform/gunicorn.conf.py config.wsgi
    ;;
  worker|trainer)
    # Prefork children write their metrics under PROMETHEUS_MULTIPROC_DIR; the main process
    # serves them on METRICS_PORT (config/celery.py). Clear the files of a previous run first.
    rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    if [ "$role" = trainer ]; then queues=training concurrency=1; else queues=default,signals,ranklog concurrency=2; fi
    exec celery -A config worker \
      --queues "${CELERY_QUEUES:-$queues}" \
      --concurrency "${CELERY_CONCURRENCY:-$concurrency}" \
      --prefetch-multiplier 1 \
      --max-tasks-per-child "${CELERY_MAX_TASKS_PER_CHILD:-200}" \
      --max-memory-per-child "${CELERY_MAX_MEMORY_PER_CHILD_KB:-400000}" \
      -O fair \
      --without-mingle --without-gossip \
      --loglevel "${LOG_LEVEL:-INFO}"
    ;;
  beat)
    rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    exec celery -A config beat --schedule /tmp/celerybeat-schedule --loglevel "${LOG_LEVEL:-INFO}"
    ;;
  migrate)
    exec python manage.py migrate --noinput
    ;;
  healthcheck)
    case "$RANKWELL_ROLE" in
      worker|trainer) exec celery -A config inspect ping --destination "celery@$(hostname)" --timeout 5 ;;
      beat) exec python -c "import os, sys; sys.exit(0 if os.path.exists('/tmp/celerybeat-schedule') else 1)" ;;
      *) exec python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=2)" ;;
    esac
    ;;
  *)
    exec "$@"
    ;;
esac
