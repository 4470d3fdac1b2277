# Container images, built locally without any registry.
#
# Included by the top Makefile; also usable on its own from the repository
# root:  make -f deployments/images.mk images
#
#   make images                      binaries into bin/, then all four images
#   make image-nats image-redis      one image at a time (image-worker, image-publisher too)
#   make images IMAGE_TAG=dev        another tag; IMAGE_PREFIX=... another repository prefix
#   make images-list                 the images and their sizes
#   make images-upgrade              worker:upgrade-a and worker:upgrade-b, two
#                                    versions for the rolling-upgrade rehearsal
#
# Every image is FROM scratch. Worker, publisher and nats copy static Go
# binaries (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"); redis copies the
# host's Debian redis-server and the shared libraries it links
# (deployments/docker/redis-rootfs.sh). Each image is built from its own
# temporary context holding only the files it copies, with the classic builder
# (DOCKER_BUILDKIT=0), so nothing is pulled and nothing else is sent to the
# daemon.

# Including this file must not change the includer's default goal.
IMAGE_MK_SAVED_GOAL := $(.DEFAULT_GOAL)

IMAGE_PREFIX ?= hybridscore
IMAGE_TAG ?= local
IMAGE_BIN_DIR ?= bin
IMAGE_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
IMAGE_DOCKER ?= docker
IMAGE_GO ?= go
IMAGE_VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
IMAGE_GO_BUILD = CGO_ENABLED=0 $(IMAGE_GO) build -trimpath -ldflags "-s -w -X github.com/hybridscore/hybridscore/internal/server.Version=$(IMAGE_VERSION)"
IMAGE_DOCKER_BUILD = DOCKER_BUILDKIT=0 $(IMAGE_DOCKER) build --force-rm \
	--label org.opencontainers.image.source=github.com/hybridscore/hybridscore \
	--label org.opencontainers.image.version=$(IMAGE_TAG)

# deployments/docker, relative to where make runs (the repository root).
IMAGE_DOCKER_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/docker

IMAGE_NAMES := worker publisher nats redis

.PHONY: images image-binaries image-worker image-publisher image-nats image-redis \
	image-bin-worker image-bin-publisher image-bin-nats image-bin-httpprobe images-list images-rm

# The rehearsal's upgrade-a and upgrade-b images have fixed tags: only a
# build of the default tag makes them, so that a private tag
# (make images IMAGE_TAG=mine) never replaces what TestRollingUpgrade runs.
ifeq ($(IMAGE_TAG),local)
images: image-binaries image-worker image-publisher image-nats image-redis images-upgrade
else
images: image-binaries image-worker image-publisher image-nats image-redis
endif

image-binaries: image-bin-worker image-bin-publisher image-bin-nats image-bin-httpprobe

# Go's build cache makes these cheap to repeat; they run one at a time unless
# make is given -j.
image-bin-worker:
	$(IMAGE_GO_BUILD) -o $(IMAGE_BIN_DIR)/worker ./worker

image-bin-publisher:
	$(IMAGE_GO_BUILD) -o $(IMAGE_BIN_DIR)/publisher ./publisher

image-bin-nats:
	$(IMAGE_GO_BUILD) -o $(IMAGE_BIN_DIR)/nats-server github.com/nats-io/nats-server/v2

image-bin-httpprobe:
	$(IMAGE_GO_BUILD) -o $(IMAGE_BIN_DIR)/httpprobe ./$(IMAGE_DOCKER_DIR)/httpprobe

# image_context: shell commands that create "$$ctx" (removed on exit) with the
# Dockerfile $(1), the non-root user files and an empty /tmp.
define image_context
ctx=$$(mktemp -d) && trap 'rm -rf "$$ctx"' EXIT && \
cp $(IMAGE_DOCKER_DIR)/$(1) "$$ctx/Dockerfile" && \
cp $(IMAGE_DOCKER_DIR)/passwd $(IMAGE_DOCKER_DIR)/group "$$ctx/" && \
mkdir -m 1777 "$$ctx/tmp"
endef

image-worker: image-bin-worker image-bin-httpprobe
	@set -e; $(call image_context,worker.Dockerfile) && \
	cp $(IMAGE_BIN_DIR)/worker $(IMAGE_BIN_DIR)/httpprobe "$$ctx/" && \
	cp $(IMAGE_CA_BUNDLE) "$$ctx/ca-certificates.crt" && \
	$(IMAGE_DOCKER_BUILD) -t $(IMAGE_PREFIX)/worker:$(IMAGE_TAG) "$$ctx"

image-publisher: image-bin-publisher
	@set -e; $(call image_context,publisher.Dockerfile) && \
	cp $(IMAGE_BIN_DIR)/publisher "$$ctx/" && \
	cp $(IMAGE_CA_BUNDLE) "$$ctx/ca-certificates.crt" && \
	$(IMAGE_DOCKER_BUILD) -t $(IMAGE_PREFIX)/publisher:$(IMAGE_TAG) "$$ctx"

image-nats: image-bin-nats image-bin-httpprobe
	@set -e; $(call image_context,nats.Dockerfile) && \
	cp $(IMAGE_BIN_DIR)/nats-server $(IMAGE_BIN_DIR)/httpprobe "$$ctx/" && \
	mkdir -m 0755 "$$ctx/data" && \
	$(IMAGE_DOCKER_BUILD) -t $(IMAGE_PREFIX)/nats:$(IMAGE_TAG) "$$ctx"

image-redis:
	@set -e; ctx=$$(mktemp -d) && trap 'rm -rf "$$ctx"' EXIT && \
	cp $(IMAGE_DOCKER_DIR)/redis.Dockerfile "$$ctx/Dockerfile" && \
	sh $(IMAGE_DOCKER_DIR)/redis-rootfs.sh "$$ctx" && \
	$(IMAGE_DOCKER_BUILD) -t $(IMAGE_PREFIX)/redis:$(IMAGE_TAG) "$$ctx"

# The rolling-upgrade rehearsal (integration/upgrade_test.go) replaces
# workers of one version by another and back. worker:upgrade-a and
# worker:upgrade-b are the same code stamped with two versions,
# $(IMAGE_VERSION)-upgrade-a and $(IMAGE_VERSION)-upgrade-b, which /health
# reports and the label org.opencontainers.image.version carries (the test
# reads it). Their binaries go to bin/upgrade-*/, so bin/worker stays as it is.
IMAGE_UPGRADE_TAGS := upgrade-a upgrade-b

.PHONY: images-upgrade $(addprefix image-,$(IMAGE_UPGRADE_TAGS))

images-upgrade: $(addprefix image-,$(IMAGE_UPGRADE_TAGS))

$(addprefix image-,$(IMAGE_UPGRADE_TAGS)): image-%: image-bin-httpprobe
	CGO_ENABLED=0 $(IMAGE_GO) build -trimpath \
		-ldflags "-s -w -X github.com/hybridscore/hybridscore/internal/server.Version=$(IMAGE_VERSION)-$*" \
		-o $(IMAGE_BIN_DIR)/$*/worker ./worker
	@set -e; $(call image_context,worker.Dockerfile) && \
	cp $(IMAGE_BIN_DIR)/$*/worker $(IMAGE_BIN_DIR)/httpprobe "$$ctx/" && \
	cp $(IMAGE_CA_BUNDLE) "$$ctx/ca-certificates.crt" && \
	DOCKER_BUILDKIT=0 $(IMAGE_DOCKER) build --force-rm \
		--label org.opencontainers.image.source=github.com/hybridscore/hybridscore \
		--label org.opencontainers.image.version=$(IMAGE_VERSION)-$* \
		-t $(IMAGE_PREFIX)/worker:$* "$$ctx"

images-list:
	@$(IMAGE_DOCKER) images --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.CreatedSince}}' \
		$(foreach n,$(IMAGE_NAMES),--filter reference=$(IMAGE_PREFIX)/$(n):$(IMAGE_TAG))

images-rm:
	-$(IMAGE_DOCKER) rmi $(foreach n,$(IMAGE_NAMES),$(IMAGE_PREFIX)/$(n):$(IMAGE_TAG))

.DEFAULT_GOAL := $(IMAGE_MK_SAVED_GOAL)
