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
# A board that sets IMAGE_DISK (the disk's device on the box, /dev/vda) gets
# a whole bootable disk image instead of the overlay, boards/image/make_disk.sh:
# build/x/image/cairn-VERSION-x.img (and .img.xz), with two A/B root slots
# holding cairn-VERSION-x.rootfs (+ .manifest, .sig), the update file.
#
#   make image-test BOARD=qemu-arm64
#
# builds that image and boots it under qemu-system (test/image/boot_test.py).

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

ifneq ($(IMAGE_DISK),)
# Host tools the disk image needs: sfdisk, mkfs.vfat, mtools, cpio, xz, depmod.
IMAGE_APT     += fdisk dosfstools mtools cpio xz-utils kmod
endif

.PHONY: image image-test
image:
	$(Q)sh boards/install_deps.sh $(BOARD_APT)
	$(Q)$(MAKE) --no-print-directory MODE=release all
	$(Q)$(MAKE) --no-print-directory BOARD=host MODE=release $(IMAGE_TOOL)
ifeq ($(IMAGE_DISK),)
	$(Q)sh boards/make_image.sh --board $(BOARD) --version $(IMAGE_VERSION) --bin build/$(BOARD)/release \
	  --tool $(IMAGE_TOOL) --out $(IMAGE_DIR) $(if $(IMAGE_KEY),--key $(IMAGE_KEY))
else
	$(Q)sh boards/image/make_disk.sh --board $(BOARD) --version $(IMAGE_VERSION) --bin build/$(BOARD)/release \
	  --tool $(IMAGE_TOOL) --out $(IMAGE_DIR) $(if $(IMAGE_KEY),--key $(IMAGE_KEY)) --arch $(BOARD_ARCH) \
	  --triplet $(BOARD_TRIPLET) --dev $(IMAGE_DISK) --part-prefix '$(IMAGE_PART_PREFIX)' \
	  --cmdline-extra '$(IMAGE_CMDLINE)'
endif

# Boots the board's disk image under qemu-system and runs the update and
# rollback sequence against it (docs/boards.md: not in `make test`).
image-test:
ifeq ($(BOARD_QEMU_SYSTEM),)
	$(error board $(BOARD) has no BOARD_QEMU_SYSTEM: no image test)
endif
	$(Q)sh boards/install_deps.sh $(BOARD_APT) $(BOARD_QEMU_APT)
	$(Q)$(MAKE) --no-print-directory image
	$(Q)$(DEBIAN_PYTHON) test/image/boot_test.py --image-dir $(IMAGE_DIR) --board $(BOARD) \
	  --version $(IMAGE_VERSION) --tool $(IMAGE_TOOL) --qemu '$(BOARD_QEMU_SYSTEM)' \
	  --key $(or $(IMAGE_KEY),$(IMAGE_DIR)/dev-key.pem)
