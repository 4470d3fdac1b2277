# NATS server with JetStream, built FROM scratch from the nats-server module
# already required by go.mod:
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/nats-server \
#     github.com/nats-io/nats-server/v2
# plus deployments/docker/httpprobe for the container health check (scratch
# has no wget/curl):  /httpprobe http://127.0.0.1:8222/healthz
#
# The command line matches the upstream nats:*-alpine image closely enough
# that docker-compose.yml can pass the same flags to either image.
FROM scratch

COPY passwd /etc/passwd
COPY group /etc/group
COPY --chown=65532:65532 tmp /tmp
# JetStream store; a named volume mounted here inherits the 65532 owner.
COPY --chown=65532:65532 data /data
COPY httpprobe /httpprobe
COPY nats-server /nats-server

USER 65532:65532

# 4222 clients, 6222 cluster routes, 8222 HTTP monitoring (/healthz, /jsz).
EXPOSE 4222 6222 8222

ENTRYPOINT ["/nats-server"]
CMD ["-js", "-sd", "/data", "-m", "8222"]
