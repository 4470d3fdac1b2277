# hybridscore worker image: the consumer (default command), `worker health`
# and `worker langextract-server`.
#
# Built FROM scratch from prebuilt static binaries, so no registry is needed:
# `make images` (deployments/images.mk) assembles a small build context with
#   worker                 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" ./worker
#   httpprobe              the same, ./deployments/docker/httpprobe (health checks
#                          for the langextract-server mode; scratch has no curl)
#   ca-certificates.crt    the host's /etc/ssl/certs/ca-certificates.crt
#   passwd, group          a numeric non-root user 65532 ("nonroot")
#   tmp/                   an empty directory, mode 1777
# and runs `DOCKER_BUILDKIT=0 docker build` on it.
FROM scratch

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd /etc/passwd
COPY group /etc/group
COPY --chown=65532:65532 tmp /tmp
COPY httpprobe /httpprobe
COPY worker /worker

USER 65532:65532
WORKDIR /tmp

# Health, metrics and admin (HTTP_ADDR, default :8053). The langextract-server
# mode listens where --addr says (8156 in docker-compose.yml).
EXPOSE 8053

ENTRYPOINT ["/worker"]
