# The one platform image (P(-1)): every runtime entrypoint, selected by argument:
#   docker run <image> <component> [args]   ==   python -m runtime <component> [args]
# No secrets are baked in: credentials arrive at run time from SSM / the task environment.
# Tag: git-<sha> (registry IMAGE_TAG_GIT_SHA_PATTERN); `fp devmin package` computes it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Sources only (see .dockerignore: an allow-list, so no .env, venv, runs/ or state files get in).
COPY . /app

# Editable install keeps the registry and schemas beside the code, where runtime.paths finds them.
RUN pip install -e . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin fp \
    && python -m runtime --help

# Writable scratch on ECS's read-only root filesystem: the task definitions mount a bind volume at
# each of these paths, and ECS seeds it with this content and ownership only because of VOLUME.
VOLUME ["/home/fp", "/tmp"]

USER fp
# Scratch space the non-root user owns; code, registry and schemas stay read-only under /app.
WORKDIR /home/fp

ENTRYPOINT ["python", "-m", "runtime"]
CMD ["--help"]
