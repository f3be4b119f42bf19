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

# The whole disk image (boards/image.mk, docs/boards.md): what the boot
# partition holds for the board's firmware (efi: systemd-boot, which qemu's
# UEFI firmware starts from the disk), the kernel console, the modules the
# initramfs loads (virtio for qemu's virt machine) and its watchdog driver;
# and how `make image-test` boots it (qemu's virt machine, TCG, with Debian's
# UEFI firmware for it, qemu-efi-aarch64).
IMAGE_FIRMWARE      = efi
IMAGE_CONSOLE       = console=ttyAMA0
IMAGE_MODULES       = virtio_pci virtio_mmio virtio_blk virtio_net virtio-rng $(IMAGE_COMMON_MODULES)
IMAGE_WATCHDOG_MODULE = i6300esb
BOARD_QEMU_SYSTEM   = qemu-system-aarch64 -M virt -cpu cortex-a53 -m 1024 -device i6300esb
# The initramfs arms the watchdog (qemu's i6300esb) for 180 s; cairnd pets it.
# No petting during the boot (cairn.bootpet=): 180 s covers a boot. The image
# test runs the rpi4's setting instead (15 s, petted; test/image/boot_test.py).
IMAGE_CMDLINE       = cairn.watchdog=180
BOARD_QEMU_APT      = qemu-system-arm qemu-efi-aarch64
IMAGE_QEMU_BIOS     = /usr/share/qemu-efi-aarch64/QEMU_EFI.fd
