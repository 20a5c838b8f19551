# One image for every process of the production topology (compose.yaml, docs/scaling.md):
# web (gunicorn), ws (uvicorn), worker and beat (Celery), and the one-off migrate job.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
# Static files are served by whitenoise from the image; the build needs a throw-away key.
RUN SECRET_KEY=build-only-not-used-at-runtime-0123456789abcdefghijklmnopqrstuvwxyz \
    ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput -v0 \
    && useradd --system --uid 10001 --home-dir /app app \
    && mkdir -p /app/media /tmp/metrics && chown app /app/media /tmp/metrics

USER app
EXPOSE 8000 8001 9808
CMD ["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.conf.py"]
