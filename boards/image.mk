# Board images and the board's hardware table. Included by the Makefile.
#
#   make image BOARD=x [IMAGE_KEY=signing-key.pem]
#
# writes build/x/image/cairn-VERSION-x.{squashfs,manifest,sig}: a squashfs
# root overlay (release cairnd and cairn, the board's default config, a
# systemd unit and a sysvinit script), a manifest listing the SHA-256 of
# every file and of the squashfs, and an RSA-2048 PSS signature of the
# manifest. Without IMAGE_KEY a throwaway development key is made under
# build/x/image/ (and make says so loudly). Layout and format: docs/boards.md.
#
# A board that sets IMAGE_FIRMWARE (what its boot partition holds for the
# board's boot firmware: none, efi, rpi4) gets a whole bootable disk image
# instead of the overlay, boards/image/make_disk.sh:
# build/x/image/cairn-VERSION-x.img (and .img.xz), with two A/B root slots
# holding cairn-VERSION-x.rootfs (+ .manifest, .sig), the update file.
#
#   make image-test BOARD=qemu-arm64|rpi4
#
# builds that image and checks it without running it (test/image/check_disk.py:
# partitions, boot files, firmware, initramfs, root slots), runs the boot's
# watchdog and LED functions under the image's busybox against plain files
# (test/image/boot_lib_test.py), then, on a board with BOARD_QEMU_SYSTEM,
# boots it under qemu-system (test/image/boot_test.py).

# --- the HW_ lines of boards/*.mk become platform/linux/board_io.cc's table ---
$(GEN)/board_hardware.inc: $(wildcard boards/*.mk)
	@mkdir -p $(@D)
	$(Q)for f in $(sort $(wildcard boards/*.mk)); do \
	  b=$$(basename $$f .mk); \
	  sed -n 's/^HW_\([a-z0-9_]*\)[ \t]*=[ \t]*\([^ \t#]*\).*$$/{"'"$$b"'", "\1", "\2"},/p' $$f; \
	done > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/platform/linux/board_io.o: $(GEN)/board_hardware.inc

# --- the image ----------------------------------------------------------------
IMAGE_VERSION := $(shell sed -n 's/.*kVersion\[\] = "\([^"]*\)".*/\1/p' include/cairn/core/version.h)
IMAGE_DIR     := build/$(BOARD)/image
# The signing and config tool runs here, on the build machine: the host's
# release cairn, whatever the board.
IMAGE_TOOL    := build/host/release/cairn
# squashfs-tools: mksquashfs makes the image (unsquashfs, used by the tests
# and by owners, reads it back without root). `make deps` (and so `make
# test`, whose test_image.py builds an image) installs it too.
IMAGE_APT     := squashfs-tools
BOARD_APT     += $(IMAGE_APT)

ifneq ($(IMAGE_FIRMWARE),)
# Host tools the disk image needs: sfdisk, mkfs.vfat, mtools, cpio, xz, depmod.
IMAGE_APT     += fdisk dosfstools mtools cpio xz-utils kmod
# The modules every whole image's initramfs loads after the board's own.
# ledtrig-timer: the boot's LED pattern (cairn.led=, boards/image/boot-lib.sh).
IMAGE_COMMON_MODULES = crc32c_generic squashfs ext4 vfat nls_cp437 nls_ascii nls_iso8859-1 ledtrig-timer
IMAGE_BOOT_MB ?= 64
IMAGE_SLOT_MB ?= 96
# The downloaded .debs, shared by the boards of one architecture.
IMAGE_DEBS    := build/debs/$(BOARD_ARCH)
endif
# What check_disk.py runs besides Python: fdtget (device-tree-compiler) reads
# the device tree, openssl checks the root slot's signature.
IMAGE_TEST_APT := device-tree-compiler openssl

.PHONY: image image-test
image:
	$(Q)sh boards/install_deps.sh $(BOARD_APT)
	$(Q)$(MAKE) --no-print-directory MODE=release all
	$(Q)$(MAKE) --no-print-directory BOARD=host MODE=release $(IMAGE_TOOL)
ifeq ($(IMAGE_FIRMWARE),)
	$(Q)sh boards/make_image.sh --board $(BOARD) --version $(IMAGE_VERSION) --bin build/$(BOARD)/release \
	  --tool $(IMAGE_TOOL) --out $(IMAGE_DIR) $(if $(IMAGE_KEY),--key $(IMAGE_KEY))
else
	$(Q)sh boards/image/make_disk.sh --board $(BOARD) --version $(IMAGE_VERSION) --bin build/$(BOARD)/release \
	  --tool $(IMAGE_TOOL) --out $(IMAGE_DIR) $(if $(IMAGE_KEY),--key $(IMAGE_KEY)) --arch $(BOARD_ARCH) \
	  --triplet $(BOARD_TRIPLET) --firmware $(IMAGE_FIRMWARE) --console '$(IMAGE_CONSOLE)' \
	  --modules '$(IMAGE_MODULES)' --watchdog-module '$(IMAGE_WATCHDOG_MODULE)' --boot-mb $(IMAGE_BOOT_MB) \
	  --slot-mb $(IMAGE_SLOT_MB) --debs $(IMAGE_DEBS) --cmdline-extra '$(IMAGE_CMDLINE)'
endif

# Checks the board's disk image without running it, then boots it under
# qemu-system where the board has a BOARD_QEMU_SYSTEM and runs the update and
# rollback sequence against it (docs/boards.md: not in `make test`).
image-test:
ifeq ($(IMAGE_FIRMWARE),)
	$(error board $(BOARD) has no whole disk image (IMAGE_FIRMWARE): no image test)
endif
	$(Q)sh boards/install_deps.sh $(BOARD_APT) $(BOARD_QEMU_APT) $(IMAGE_TEST_APT)
	$(Q)$(MAKE) --no-print-directory image
	$(Q)$(DEBIAN_PYTHON) test/image/check_disk.py --image-dir $(IMAGE_DIR) --board $(BOARD) \
	  --version $(IMAGE_VERSION) --tool $(IMAGE_TOOL) --key $(or $(IMAGE_KEY),$(IMAGE_DIR)/dev-key.pem) \
	  --debs $(IMAGE_DEBS) --firmware $(IMAGE_FIRMWARE) --boot-mb $(IMAGE_BOOT_MB) --slot-mb $(IMAGE_SLOT_MB) \
	  --modules '$(IMAGE_MODULES) $(IMAGE_WATCHDOG_MODULE)' --cmdline-extra '$(IMAGE_CMDLINE)' --led '$(HW_led)'
	$(Q)$(DEBIAN_PYTHON) test/image/boot_lib_test.py --busybox $(IMAGE_DIR)/disk/pkg/bin/busybox --run '$(BOARD_RUN)'
ifneq ($(BOARD_QEMU_SYSTEM),)
	$(Q)$(DEBIAN_PYTHON) test/image/boot_test.py --image-dir $(IMAGE_DIR) --board $(BOARD) \
	  --version $(IMAGE_VERSION) --tool $(IMAGE_TOOL) --qemu '$(BOARD_QEMU_SYSTEM)' \
	  --key $(or $(IMAGE_KEY),$(IMAGE_DIR)/dev-key.pem) $(if $(IMAGE_QEMU_BIOS),--bios $(IMAGE_QEMU_BIOS))
endif
