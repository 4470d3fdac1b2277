# Redis built FROM scratch from the host's Debian redis-server package:
# deployments/docker/redis-rootfs.sh copies /usr/bin/redis-server,
# /usr/bin/redis-cli (for the health check) and every shared library `ldd`
# lists for them, plus the dynamic loader, into rootfs/ of the build context.
#
# No Debian config file: Debian's binds to 127.0.0.1 and turns protected mode
# on, which breaks clients coming through a mapped port. Persistence is off
# (the semantic cache is a cache; nothing depends on Redis surviving).
#
# There is deliberately no ENTRYPOINT, so `redis-server ...` and
# `redis-cli ping` work as commands exactly as with the upstream redis image.
FROM scratch

COPY rootfs/ /
COPY --chown=65532:65532 data /data
COPY --chown=65532:65532 tmp /tmp

ENV PATH=/usr/bin
USER 65532:65532
WORKDIR /data

EXPOSE 6379

CMD ["redis-server", "--protected-mode", "no", "--port", "6379", "--save", "", "--appendonly", "no"]
