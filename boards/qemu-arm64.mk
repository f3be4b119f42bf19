# qemu-arm64: a virtual arm64 board (cortex-a53) for tests under qemu-user.
# Build and test: make deps BOARD=qemu-arm64 && make test BOARD=qemu-arm64
BOARD_ARCH     = arm64
BOARD_TRIPLET  = aarch64-linux-gnu
BOARD_CFLAGS   = -mcpu=cortex-a53
BOARD_APT      = g++-aarch64-linux-gnu qemu-user libuv1-dev:arm64 liblmdb-dev:arm64 libmbedtls-dev:arm64 libcjson-dev:arm64 libgtest-dev:arm64 libstdc++6:arm64
BOARD_RUN      = qemu-aarch64
BOARD_TIMEOUT_MULT = 10
BOARD_RAM_MB   = 1024

LIMIT_max_connections      = 128
LIMIT_control_max_clients  = 16
LIMIT_threadpool           = 2

# Watchdog and status LED: none under qemu-user.
HW_watchdog             =
HW_led                  =

# The whole disk image (boards/image.mk, docs/boards.md): the disk as the
# box sees it, its partitions ${IMAGE_DISK}${IMAGE_PART_PREFIX}1..4; and how
# `make image-test` boots it (qemu's virt machine, TCG).
IMAGE_DISK          = /dev/vda
IMAGE_PART_PREFIX   =
BOARD_QEMU_SYSTEM   = qemu-system-aarch64 -M virt -cpu cortex-a53 -m 1024 -device i6300esb
# The initramfs arms the watchdog (qemu's i6300esb) for 180 s; cairnd pets it.
IMAGE_CMDLINE       = cairn.watchdog=180
BOARD_QEMU_APT      = qemu-system-arm
