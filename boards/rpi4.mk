# rpi4: Raspberry Pi 4 (BCM2711, Cortex-A72, arm64, 1-8 GB). The A72 here has
# no ARMv8 crypto extensions, so TLS prefers ChaCha20-Poly1305.
# Build and test: make deps BOARD=rpi4 && make test BOARD=rpi4   (tests under qemu-aarch64)
BOARD_ARCH     = arm64
BOARD_TRIPLET  = aarch64-linux-gnu
BOARD_CFLAGS   = -mcpu=cortex-a72
BOARD_APT      = g++-aarch64-linux-gnu qemu-user libuv1-dev:arm64 liblmdb-dev:arm64 libmbedtls-dev:arm64 libcjson-dev:arm64 libgtest-dev:arm64 libstdc++6:arm64
BOARD_RUN      = qemu-aarch64
BOARD_TIMEOUT_MULT = 10
BOARD_RAM_MB   = 1024

LIMIT_max_connections      = 128
LIMIT_control_max_clients  = 16
LIMIT_lmdb_map_max_bytes   = 68719476736
LIMIT_tls_prefer_chacha    = 1

# Watchdog and status LED (docs/boards.md; cairn.json "hardware" overrides).
# bcm2835-wdt (dtparam=watchdog=on); the green activity LED.
HW_watchdog             = /dev/watchdog
HW_watchdog_interval_ms = 5000
HW_led                  = ACT

# The whole disk image (boards/image.mk, docs/boards.md). The boot partition
# holds Debian's Raspberry Pi firmware, the kernel's bcm2711-rpi-4-b.dtb and a
# config.txt (128 MiB: room for all the Pi 4 firmware variants and a second
# kernel). The console is the mini UART on GPIO 14/15 (ttyS1), as Debian's
# raspi-firmware sets it. The initramfs loads: the SD card's controller
# (sdhci-iproc) and the fixed and GPIO regulators that power it; the
# Ethernet (genet) with its PHY (broadcom) and MDIO (mdio-bcm-unimac)
# drivers; the hardware random number generator (the node makes its keys on
# the first boot); the watchdog (bcm2835_wdt, with its longest timeout, 15 s,
# also its default); the LEDs; cpufreq;
# USB (the VL805 behind PCIe: reset-raspberrypi, xhci-pci; usb-storage, uas).
# The command line arms the watchdog during the boot (15 s: shorter than a
# boot, so the initramfs and init pet it until cairnd is started, for at most
# 180 s of uptime) and shows the boot pattern on the ACT LED until cairnd
# takes it over (boards/image/boot-lib.sh, docs/boards.md).
IMAGE_FIRMWARE      = rpi4
IMAGE_BOOT_MB       = 128
IMAGE_CONSOLE       = console=tty0 console=ttyS1,115200
IMAGE_MODULES       = fixed gpio-regulator sdhci-iproc iproc-rng200 broadcom mdio-bcm-unimac genet bcm2835_wdt leds-gpio \
                      raspberrypi-cpufreq cpufreq-dt reset-raspberrypi xhci-pci usb-storage uas $(IMAGE_COMMON_MODULES)
IMAGE_WATCHDOG_MODULE =
IMAGE_CMDLINE       = cairn.watchdog=15 cairn.bootpet=180 cairn.led=ACT
