# Stand-in for nginx:1.28-alpine from Debian sid (`server ... resolve` needs nginx >= 1.27.3). The project's
# compose file runs it as uid 101 on a read-only root with /tmp as tmpfs, like the upstream image; the
# compiled-in log paths point at the standard streams so nothing needs a writable /var.
ARG BASE
FROM ${BASE}
RUN printf 'Acquire::Check-Valid-Until "false";\n' > /etc/apt/apt.conf.d/99frozen-mirror \
 && apt-get update \
 && apt-get install -y --no-install-recommends nginx-light wget \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && nginx -v
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
