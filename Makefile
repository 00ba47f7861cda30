# heartbeat-rs: build, then install where Debian's heartbeat 3.0.6 package put things.
#
#   make                      cargo build --release
#   make install              install what `make` built (it builds nothing itself)
#   make install DESTDIR=/tmp/root PREFIX=/usr
#   make install BIN_DIR=target/debug     binaries built elsewhere (or BIN_HEARTBEAT=... each)
#   make uninstall            remove what install put outside /etc/ha.d
#
# What install never does: overwrite ha.cf, haresources or authkeys (a sample ha.cf and
# haresources, and an authkeys with a newly generated random key, are put in /etc/ha.d only
# where the file is missing; SAMPLE_CONFIG=no skips that), install a published key, or a resource
# script under /etc/ha.d/resource.d that differs from ours (ours is then installed beside it
# as NAME.heartbeat-rs; FORCE_RESOURCES=yes replaces it, keeping the old one as NAME.old).
# The init script and logrotate file are ours: a different one already there is kept as
# FILE.old before ours replaces it.

PREFIX        ?= /usr
SYSCONFDIR    ?= /etc
DESTDIR       ?=

BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
LIBEXECDIR  ?= $(PREFIX)/libexec/heartbeat
SHAREDIR    ?= $(PREFIX)/share/heartbeat
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/heartbeat
ifeq ($(PREFIX),/usr)
UNITDIR     ?= /lib/systemd/system
else
UNITDIR     ?= $(PREFIX)/lib/systemd/system
endif
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
HA_DIR      ?= $(SYSCONFDIR)/ha.d
INITDIR     ?= $(SYSCONFDIR)/init.d
LOGROTATEDIR ?= $(SYSCONFDIR)/logrotate.d
# The daemon's own default (--statedir changes it at run time, not here).
STATEDIR    := /var/lib/heartbeat

CARGO         ?= cargo
BIN_DIR       ?= target/release
BIN_HEARTBEAT ?= $(BIN_DIR)/heartbeat
BIN_CL_STATUS ?= $(BIN_DIR)/cl_status
BIN_HB_STANDBY ?= $(BIN_DIR)/hb_standby
BIN_HB_TAKEOVER ?= $(BIN_DIR)/hb_takeover
BIN_OUTDATER ?= $(BIN_DIR)/drbd-peer-outdater
BIN_HB_STATUS ?= $(BIN_DIR)/hb_status

SAMPLE_CONFIG   ?= yes
FORCE_RESOURCES ?= no

INSTALL ?= install
RESOURCES := $(sort $(notdir $(wildcard resource.d/*)))
MANPAGES  := $(sort $(notdir $(wildcard man/*.[0-9])))
DAEMON    := $(LIBEXECDIR)/heartbeat

.PHONY: all install uninstall install-bin install-resources install-init install-man \
	install-doc install-config install-dirs check-bins

all:
	$(CARGO) build --release --locked

check-bins:
	@for b in "$(BIN_HEARTBEAT)" "$(BIN_CL_STATUS)" "$(BIN_HB_STANDBY)" "$(BIN_HB_TAKEOVER)" \
		"$(BIN_OUTDATER)" "$(BIN_HB_STATUS)"; do \
		[ -x "$$b" ] || { echo "$$b is missing: run 'make' (cargo build --release) first" >&2; exit 1; }; \
	done

install: check-bins install-bin install-resources install-init install-man install-doc \
	install-config install-dirs

# Binaries where the original put them: the daemon in libexec (linked from sbin), cl_status
# in bin, hb_standby and hb_takeover in the share directory, which is not on PATH (linked
# from sbin).
install-bin: check-bins
	$(INSTALL) -d "$(DESTDIR)$(LIBEXECDIR)" "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(SBINDIR)" \
		"$(DESTDIR)$(SHAREDIR)"
	$(INSTALL) -m 0755 "$(BIN_HEARTBEAT)" "$(DESTDIR)$(DAEMON)"
	$(INSTALL) -m 0755 "$(BIN_CL_STATUS)" "$(DESTDIR)$(BINDIR)/cl_status"
	$(INSTALL) -m 0755 "$(BIN_HB_STATUS)" "$(DESTDIR)$(BINDIR)/hb_status"
	$(INSTALL) -m 0755 "$(BIN_HB_STANDBY)" "$(DESTDIR)$(SHAREDIR)/hb_standby"
	$(INSTALL) -m 0755 "$(BIN_HB_TAKEOVER)" "$(DESTDIR)$(SHAREDIR)/hb_takeover"
	ln -sfn "$(DAEMON)" "$(DESTDIR)$(SBINDIR)/heartbeat"
	ln -sfn "$(SHAREDIR)/hb_standby" "$(DESTDIR)$(SBINDIR)/hb_standby"
	ln -sfn "$(SHAREDIR)/hb_takeover" "$(DESTDIR)$(SBINDIR)/hb_takeover"
	@# DRBD's fence-peer handler: where Debian puts it, and where DRBD how-tos name it.
	$(INSTALL) -m 0755 "$(BIN_OUTDATER)" "$(DESTDIR)$(LIBEXECDIR)/drbd-peer-outdater"
	$(INSTALL) -d "$(DESTDIR)$(PREFIX)/lib/heartbeat"
	ln -sfn "$(LIBEXECDIR)/drbd-peer-outdater" "$(DESTDIR)$(PREFIX)/lib/heartbeat/drbd-peer-outdater"
	@# cl_status is setgid haclient, as in 3.0.6, where that group exists (the package
	@# creates it); run as root on the real system only.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && getent group haclient >/dev/null 2>&1; then \
		chgrp haclient "$(BINDIR)/cl_status" && chmod 2755 "$(BINDIR)/cl_status"; \
	fi

install-resources:
	$(INSTALL) -d "$(DESTDIR)$(HA_DIR)/resource.d"
	@for f in $(RESOURCES); do \
		src=resource.d/$$f dst="$(DESTDIR)$(HA_DIR)/resource.d/$$f"; \
		case $$f in *.sh) mode=0644 ;; *) mode=0755 ;; esac; \
		if [ ! -e "$$dst" ] || cmp -s "$$src" "$$dst"; then \
			$(INSTALL) -m $$mode "$$src" "$$dst" || exit 1; \
		elif [ "$(FORCE_RESOURCES)" = yes ]; then \
			echo "resource.d/$$f differs: kept as $$f.old, replaced"; \
			mv -f "$$dst" "$$dst.old" && $(INSTALL) -m $$mode "$$src" "$$dst" || exit 1; \
		else \
			echo "resource.d/$$f is yours: kept; ours is $$f.heartbeat-rs"; \
			$(INSTALL) -m $$mode "$$src" "$$dst.heartbeat-rs" || exit 1; \
		fi; \
	done

# The init script and the unit name the daemon where it was installed (and the
# configuration directory, when it is not the daemon's default /etc/ha.d).
CONFDIR_OPT := $(if $(filter /etc/ha.d,$(HA_DIR)),, --confdir $(HA_DIR))
INIT_SED := -e 's|^HEARTBEAT_BIN=$${HEARTBEAT_BIN:-/usr/libexec/heartbeat/heartbeat}|HEARTBEAT_BIN=$${HEARTBEAT_BIN:-$(DAEMON)}|' \
	-e 's|^HA_SHAREDIR=$${HA_SHAREDIR:-/usr/share/heartbeat}|HA_SHAREDIR=$${HA_SHAREDIR:-$(SHAREDIR)}|' \
	-e 's|^HA_DIR=$${HA_DIR:-/etc/ha.d}|HA_DIR=$${HA_DIR:-$(HA_DIR)}|'
UNIT_SED := -e 's|^\(Exec[A-Za-z]*=\)/usr/libexec/heartbeat/heartbeat|\1$(DAEMON)$(CONFDIR_OPT)|' \
	-e 's|^ConditionPathExists=/etc/ha.d/|ConditionPathExists=$(HA_DIR)/|'

install-init:
	$(INSTALL) -d "$(DESTDIR)$(INITDIR)" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(TMPFILESDIR)" \
		"$(DESTDIR)$(LOGROTATEDIR)"
	@set -e; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	sed $(INIT_SED) init/heartbeat >"$$tmp/init"; \
	sed $(UNIT_SED) init/heartbeat.service >"$$tmp/unit"; \
	put() { \
		if [ "$$3" = keep ] && [ -e "$$2" ] && ! cmp -s "$$1" "$$2"; then \
			echo "$$2 differs: kept as $$2.old"; mv -f "$$2" "$$2.old"; \
		fi; \
		$(INSTALL) -m "$$4" "$$1" "$$2"; \
	}; \
	put "$$tmp/init" "$(DESTDIR)$(INITDIR)/heartbeat" keep 0755; \
	put init/logrotate "$(DESTDIR)$(LOGROTATEDIR)/heartbeat" keep 0644; \
	put "$$tmp/unit" "$(DESTDIR)$(UNITDIR)/heartbeat.service" replace 0644; \
	put init/heartbeat.tmpfiles "$(DESTDIR)$(TMPFILESDIR)/heartbeat.conf" replace 0644

install-man:
	@set -e; for m in $(MANPAGES); do \
		sec=$${m##*.}; \
		$(INSTALL) -d "$(DESTDIR)$(MANDIR)/man$$sec"; \
		gzip -9nc "man/$$m" >"$(DESTDIR)$(MANDIR)/man$$sec/$$m.gz"; \
		chmod 0644 "$(DESTDIR)$(MANDIR)/man$$sec/$$m.gz"; \
	done

install-doc:
	$(INSTALL) -d "$(DESTDIR)$(DOCDIR)/examples"
	$(INSTALL) -m 0644 README.md docs/outgrow-a-pair.md docs/simulate.md "$(DESTDIR)$(DOCDIR)/"
	$(INSTALL) -m 0644 etc-ha.d/ha.cf etc-ha.d/haresources etc-ha.d/authkeys \
		etc-ha.d/examples/* "$(DESTDIR)$(DOCDIR)/examples/"

# A sample configuration only where there is none: ha.cf and haresources (0644). authkeys is a
# shared secret: never the sample's published key; where none exists, one with a new random
# sha1 key is generated (0600), which must then be copied to every node of the cluster.
install-config:
	$(INSTALL) -d "$(DESTDIR)$(HA_DIR)"
	@if [ "$(SAMPLE_CONFIG)" = yes ]; then \
		for f in ha.cf:0644 haresources:0644; do \
			name=$${f%%:*} mode=$${f#*:} dst="$(DESTDIR)$(HA_DIR)/$${f%%:*}"; \
			if [ -e "$$dst" ]; then \
				echo "$(HA_DIR)/$$name exists: left alone"; \
			else \
				$(INSTALL) -m $$mode "etc-ha.d/$$name" "$$dst" || exit 1; \
			fi; \
		done; \
		dst="$(DESTDIR)$(HA_DIR)/authkeys"; \
		if [ -e "$$dst" ]; then \
			echo "$(HA_DIR)/authkeys exists: left alone"; \
		else \
			key=$$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n') && [ $${#key} -eq 64 ] || \
				{ echo "cannot read /dev/urandom for a key" >&2; exit 1; }; \
			( umask 077 && printf '# Generated by make install on %s: a new random key.\n# Copy this same file (mode 0600) to every node; see authkeys(5).\nauth 1\n1 sha1 %s\n' \
				"$$(date -u +%Y-%m-%d)" "$$key" >"$$dst" ) || exit 1; \
			chmod 0600 "$$dst"; \
			echo "$(HA_DIR)/authkeys: generated with a new random key (mode 0600);" \
				"copy it to every node of the cluster"; \
		fi; \
	fi

# State directories; owners where the users exist (and we may chown).
install-dirs:
	$(INSTALL) -d -m 0755 "$(DESTDIR)$(STATEDIR)" "$(DESTDIR)$(STATEDIR)/cores"
	$(INSTALL) -d -m 0700 "$(DESTDIR)$(STATEDIR)/cores/root" \
		"$(DESTDIR)$(STATEDIR)/cores/hacluster" "$(DESTDIR)$(STATEDIR)/cores/nobody"
	-@chown hacluster "$(DESTDIR)$(STATEDIR)/cores/hacluster" 2>/dev/null
	-@chown nobody "$(DESTDIR)$(STATEDIR)/cores/nobody" 2>/dev/null

# Everything install put outside /etc/ha.d; the configuration and resource scripts stay.
uninstall:
	rm -f "$(DESTDIR)$(DAEMON)" "$(DESTDIR)$(SBINDIR)/heartbeat" \
		"$(DESTDIR)$(BINDIR)/cl_status" "$(DESTDIR)$(BINDIR)/hb_status" \
		"$(DESTDIR)$(SHAREDIR)/hb_standby" "$(DESTDIR)$(SHAREDIR)/hb_takeover" \
		"$(DESTDIR)$(SBINDIR)/hb_standby" "$(DESTDIR)$(SBINDIR)/hb_takeover" \
		"$(DESTDIR)$(LIBEXECDIR)/drbd-peer-outdater" \
		"$(DESTDIR)$(PREFIX)/lib/heartbeat/drbd-peer-outdater" \
		"$(DESTDIR)$(INITDIR)/heartbeat" "$(DESTDIR)$(UNITDIR)/heartbeat.service" \
		"$(DESTDIR)$(TMPFILESDIR)/heartbeat.conf" "$(DESTDIR)$(LOGROTATEDIR)/heartbeat"
	for m in $(MANPAGES); do rm -f "$(DESTDIR)$(MANDIR)/man$${m##*.}/$$m.gz"; done
	rm -rf "$(DESTDIR)$(DOCDIR)"
	-rmdir "$(DESTDIR)$(LIBEXECDIR)" "$(DESTDIR)$(SHAREDIR)" 2>/dev/null
