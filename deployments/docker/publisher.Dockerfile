# hybridscore publisher image: `publisher submit|batch|bench`.
#
# Built FROM scratch from a prebuilt static binary (see worker.Dockerfile and
# deployments/images.mk for how the build context is assembled). Mount a
# directory for `batch` input and results, e.g.
#   docker run --rm -v "$PWD:/work" -w /work hybridscore/publisher:local \
#     batch --nats-url nats://host:4222 jobs.jsonl
FROM scratch

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd /etc/passwd
COPY group /etc/group
COPY --chown=65532:65532 tmp /tmp
COPY publisher /publisher

USER 65532:65532
WORKDIR /tmp

# The publisher is a client; only `publisher console` listens (--listen,
# :8090 in docker-compose.yml).
EXPOSE 8090

ENTRYPOINT ["/publisher"]
CMD ["--help"]
