# shellcheck shell=sh
#
# rscfuncs.sh - helpers shared by the resource scripts in this directory.
#
# Sourced, never run. Every script sets HB_NAME (its own name) before sourcing.
# Part of the heartbeat drop-in replacement; GPL-2.0-or-later.
#
# Conventions used by all scripts:
#   * called as   SCRIPT [arg...] start|stop|status
#   * start/stop: exit 0 on success (also when there was nothing to do),
#     non-zero on failure;
#   * status: prints exactly "running" (exit 0) or "stopped" (exit 3) on stdout;
#     diagnostics never go to stdout, because heartbeat decides from the words
#     printed there;
#   * external commands can be replaced through HA_BIN_<NAME> variables
#     (a path, or "none" to pretend the tool is not installed).

PATH=${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin
export PATH

: "${HB_NAME:=resource}"

# Scratch directory for state files. heartbeat empties it at every start,
# which is right: after a restart of the daemon nothing is assumed to run.
HB_RSCTMP=${HA_RSCTMP:-/var/run/heartbeat/rsctmp}

# ---------------------------------------------------------------- logging

# hb_log LEVEL TEXT...
#   LEVEL is one of debug info WARN ERROR CRIT (heartbeat's spelling).
#   With HA_LOGFILE / HA_DEBUGLOG set (as heartbeat does for its children) the
#   line is appended there in the layout of heartbeat's own shell helpers;
#   with HA_LOGFACILITY set it also goes to syslog through logger(1);
#   with none of them it goes to stderr.
hb_log() {
	_hl_level=$1
	shift
	_hl_text="$_hl_level: $*"
	_hl_tag="$HB_NAME(default)[$$]"
	_hl_done=

	if [ "$_hl_level" = debug ]; then
		case ${HA_debug:-0} in
		'' | 0) return 0 ;;
		esac
	fi

	_hl_now=$(date '+%Y/%m/%d_%H:%M:%S')
	if [ -n "${HA_LOGFILE:-}" ] && [ "$_hl_level" != debug ]; then
		printf '%s  %s:    %s\n' "$_hl_now" "$_hl_tag" "$_hl_text" \
			>>"$HA_LOGFILE" 2>/dev/null && _hl_done=1
	fi
	if [ -n "${HA_DEBUGLOG:-}" ]; then
		printf '%s:\t%s %s\n' "$_hl_tag" "$_hl_now" "$_hl_text" \
			>>"$HA_DEBUGLOG" 2>/dev/null && _hl_done=1
	fi
	case ${HA_LOGFACILITY:-none} in
	none | kern) ;;
	*)
		case $_hl_level in
		CRIT) _hl_prio=crit ;;
		ERROR) _hl_prio=err ;;
		WARN) _hl_prio=warning ;;
		debug) _hl_prio=debug ;;
		*) _hl_prio=info ;;
		esac
		if command -v logger >/dev/null 2>&1; then
			logger -t "$_hl_tag" -p "$HA_LOGFACILITY.$_hl_prio" -- "$_hl_text" 2>/dev/null &&
				_hl_done=1
		fi
		;;
	esac
	if [ -z "$_hl_done" ]; then
		printf '%s: %s\n' "$HB_NAME" "$_hl_text" >&2
	fi
	return 0
}

# hb_die TEXT... : log an error and fail the operation.
hb_die() {
	hb_log ERROR "$@"
	exit 1
}

# --------------------------------------------------------- external tools

# hb_find OVERRIDE CANDIDATE...
#   Prints the command to use. OVERRIDE (the value of an HA_BIN_* variable)
#   wins when set; "none" means "not installed". Otherwise the first
#   candidate found (absolute path that is executable, or name on PATH).
#   Returns 1 when nothing is found.
hb_find() {
	_hf_override=$1
	shift
	if [ -n "$_hf_override" ]; then
		[ "$_hf_override" = none ] && return 1
		printf '%s\n' "$_hf_override"
		return 0
	fi
	for _hf_c in "$@"; do
		case $_hf_c in
		/*)
			if [ -x "$_hf_c" ]; then
				printf '%s\n' "$_hf_c"
				return 0
			fi
			;;
		*)
			_hf_p=$(command -v "$_hf_c" 2>/dev/null) || continue
			case $_hf_p in
			/*)
				printf '%s\n' "$_hf_p"
				return 0
				;;
			esac
			;;
		esac
	done
	return 1
}

# hb_need VARNAME OVERRIDE DESCRIPTION CANDIDATE...
#   Like hb_find, but stores the result in VARNAME and fails the operation
#   with a clear message when the tool is missing.
hb_need() {
	_hn_var=$1
	_hn_override=$2
	_hn_what=$3
	shift 3
	if _hn_path=$(hb_find "$_hn_override" "$@"); then
		eval "$_hn_var=\$_hn_path"
	else
		hb_die "required program not available: $_hn_what"
	fi
}

# ------------------------------------------------------------ state files

hb_statedir() {
	if [ ! -d "$HB_RSCTMP" ]; then
		mkdir -p "$HB_RSCTMP" 2>/dev/null ||
			hb_die "cannot create state directory $HB_RSCTMP"
	fi
}

# hb_statefile ID : path of the state file for this script and instance ID.
# Characters that cannot appear in a file name are replaced.
hb_statefile() {
	_hs_id=$(printf '%s' "$1" | tr -c 'A-Za-z0-9._,:=+@-' '_')
	printf '%s/%s-%s\n' "$HB_RSCTMP" "$HB_NAME" "$_hs_id"
}

# ----------------------------------------------------------------- status

# hb_report running|stopped : print the status word and exit accordingly.
hb_report() {
	if [ "$1" = running ]; then
		echo running
		exit 0
	fi
	echo stopped
	exit 3
}

# hb_pid_alive PID [WORD] : the process exists (and, when WORD is given,
# its command line contains WORD, which guards against a recycled pid).
hb_pid_alive() {
	case $1 in
	'' | *[!0-9]*) return 1 ;;
	esac
	kill -0 "$1" 2>/dev/null || return 1
	# a zombie (ended, not yet reaped) does not count
	if [ -r "/proc/$1/stat" ]; then
		case $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) in
		Z*) return 1 ;;
		esac
	fi
	[ -z "${2:-}" ] && return 0
	if [ -r "/proc/$1/cmdline" ]; then
		tr '\000' ' ' <"/proc/$1/cmdline" | grep -F -- "$2" >/dev/null 2>&1
		return $?
	fi
	return 0
}

# hb_bad_usage : report a usage error (the caller defines usage()) and fail.
hb_bad_usage() {
	usage >&2
	exit 2
}

# ------------------------------------------------------------- IPv4 maths

# hb_dec N : N without leading zeros (shell arithmetic reads 010 as octal).
hb_dec() {
	_hd=${1#"${1%%[!0]*}"}
	echo "${_hd:-0}"
}

# hb_ip2int A.B.C.D : prints the address as an integer; fails if malformed.
hb_ip2int() {
	case $1 in
	*[!0-9.]* | .* | *. | *..*) return 1 ;;
	esac
	_hi_old_ifs=$IFS
	IFS=.
	# shellcheck disable=SC2086 # splitting on dots is the point
	set -- $1
	IFS=$_hi_old_ifs
	[ $# -eq 4 ] || return 1
	for _hi_o in "$@"; do
		case $_hi_o in
		'' | ????*) return 1 ;;
		esac
		[ "$_hi_o" -le 255 ] || return 1
	done
	set -- "$(hb_dec "$1")" "$(hb_dec "$2")" "$(hb_dec "$3")" "$(hb_dec "$4")"
	echo $(((($1 * 256 + $2) * 256 + $3) * 256 + $4))
}

# hb_int2ip N : prints the dotted form.
hb_int2ip() {
	echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"
}

# hb_prefix_mask BITS : the netmask as an integer.
hb_prefix_mask() {
	if [ "$1" -eq 0 ]; then
		echo 0
	else
		echo $(((0xFFFFFFFF << (32 - $1)) & 0xFFFFFFFF))
	fi
}

# hb_mask2prefix MASK : MASK is "24" or "255.255.255.0"; prints the prefix
# length, fails if it is neither.
hb_mask2prefix() {
	case $1 in
	'') return 1 ;;
	*[!0-9]*)
		_hm_n=$(hb_ip2int "$1") || return 1
		_hm_bits=0
		while [ $_hm_bits -lt 32 ] &&
			[ $(((_hm_n >> (31 - _hm_bits)) & 1)) -eq 1 ]; do
			_hm_bits=$((_hm_bits + 1))
		done
		[ "$(hb_prefix_mask $_hm_bits)" -eq "$_hm_n" ] || return 1
		echo $_hm_bits
		;;
	*)
		[ "$1" -le 32 ] || return 1
		hb_dec "$1"
		;;
	esac
}

# hb_same_net IP1 IP2 BITS : both addresses lie in the same BITS-long prefix.
hb_same_net() {
	_hsn_a=$(hb_ip2int "$1") || return 1
	_hsn_b=$(hb_ip2int "$2") || return 1
	_hsn_m=$(hb_prefix_mask "$3")
	[ $((_hsn_a & _hsn_m)) -eq $((_hsn_b & _hsn_m)) ]
}

# ----------------------------------------------------------- gratuitous ARP

# hb_garp_tool : prints "send_arp PATH" or "arping PATH" (iputils syntax) or
# "arping-habets PATH", or fails when no tool is installed.
#   send_arp comes with the resource-agents package (/usr/libexec/heartbeat);
#   arping with iputils-arping (or the separate "arping" package).
hb_garp_tool() {
	if _hg_p=$(hb_find "${HA_BIN_SEND_ARP:-}" /usr/libexec/heartbeat/send_arp \
		/usr/lib/heartbeat/send_arp /usr/lib64/heartbeat/send_arp send_arp); then
		echo "send_arp $_hg_p"
		return 0
	fi
	if _hg_p=$(hb_find "${HA_BIN_ARPING:-}" arping); then
		if "$_hg_p" -V 2>&1 | grep -i iputils >/dev/null 2>&1; then
			echo "arping $_hg_p"
		else
			echo "arping-habets $_hg_p"
		fi
		return 0
	fi
	return 1
}

# hb_garp_pidfile IP : where a background announcer's pid is kept.
hb_garp_pidfile() {
	printf '%s/garp-%s.pid\n' "$HB_RSCTMP" "$1"
}

# hb_garp DEV IP : announce IP on DEV with gratuitous ARP.
#   HA_ARP_COUNT (default 5) announcements, HA_ARP_INTERVAL_MS (default 200,
#   send_arp only; arping sends one a second). By default the announcer runs
#   in the background so that a takeover is not slowed down; set
#   HA_ARP_BACKGROUND=no to wait for it. A missing tool is reported, not
#   fatal: the address works, peers just keep a stale ARP entry until it
#   expires.
hb_garp() {
	_hga_dev=$1
	_hga_ip=$2
	_hga_count=${HA_ARP_COUNT:-5}
	_hga_int=${HA_ARP_INTERVAL_MS:-200}
	case $_hga_count in '' | *[!0-9]*) _hga_count=5 ;; esac
	case $_hga_int in '' | *[!0-9]*) _hga_int=200 ;; esac

	if ! _hga_tool=$(hb_garp_tool); then
		hb_log WARN "no gratuitous ARP tool available (send_arp from resource-agents, or arping from iputils-arping): $_hga_ip was not announced on $_hga_dev; neighbours keep their old ARP entry until it times out"
		return 0
	fi
	_hga_kind=${_hga_tool%% *}
	_hga_path=${_hga_tool#* }
	case $_hga_kind in
	send_arp)
		set -- "$_hga_path" -i "$_hga_int" -r "$_hga_count" \
			"$_hga_dev" "$_hga_ip" auto not_used not_used
		;;
	arping)
		set -- "$_hga_path" -U -c "$_hga_count" -I "$_hga_dev" "$_hga_ip"
		;;
	*)
		set -- "$_hga_path" -U -c "$_hga_count" -i "$_hga_dev" "$_hga_ip"
		;;
	esac

	hb_garp_stop "$_hga_ip"
	case ${HA_ARP_BACKGROUND:-yes} in
	no | false | off | 0)
		hb_log info "announcing $_hga_ip on $_hga_dev: $*"
		if ! "$@" >/dev/null 2>&1 </dev/null; then
			hb_log WARN "gratuitous ARP for $_hga_ip on $_hga_dev failed ($1)"
		fi
		;;
	*)
		hb_log info "announcing $_hga_ip on $_hga_dev in the background: $*"
		"$@" >/dev/null 2>&1 </dev/null &
		echo $! >"$(hb_garp_pidfile "$_hga_ip")" 2>/dev/null
		;;
	esac
	return 0
}

# hb_garp_stop IP : end a background announcer for IP that is still running
# (never announce an address we no longer hold).
hb_garp_stop() {
	_hgs_file=$(hb_garp_pidfile "$1")
	[ -f "$_hgs_file" ] || return 0
	_hgs_pid=$(sed -n 1p "$_hgs_file" 2>/dev/null)
	if hb_pid_alive "$_hgs_pid" "$1"; then
		kill "$_hgs_pid" 2>/dev/null
	fi
	rm -f "$_hgs_file"
}

# --------------------------------------------------------- the "ip" tool

# hb_ip_addrs : one line per IPv4 address: "DEV ADDR PREFIX LABEL".
hb_ip_addrs() {
	"$IP" -o -4 addr show 2>/dev/null | tr '\134' ' ' | while read -r _ha_idx _ha_dev _ha_fam _ha_cidr _ha_rest; do
		[ "$_ha_fam" = inet ] || continue
		_ha_dev=${_ha_dev%%@*}
		# the label is the word right after "scope X [secondary|dynamic|...]"
		_ha_label=$_ha_dev
		# shellcheck disable=SC2086 # split the rest of ip's line into words
		set -- $_ha_rest
		while [ $# -gt 0 ]; do
			case $1 in
			brd | scope | peer | metric | proto)
				if [ $# -ge 2 ]; then shift 2; else shift; fi
				continue
				;;
			valid_lft | preferred_lft) break ;;
			secondary | dynamic | noprefixroute | deprecated | tentative | permanent | temporary | nodad | home | mngtmpaddr | optimistic | dadfailed | stable-privacy)
				;;
			*)
				_ha_label=$1
				;;
			esac
			shift
		done
		echo "$_ha_dev ${_ha_cidr%/*} ${_ha_cidr#*/} $_ha_label"
	done
}

# hb_ip_lookup IP : prints "DEV ADDR PREFIX LABEL" for IP if it is configured.
hb_ip_lookup() {
	hb_ip_addrs | while read -r _hl_dev _hl_addr _hl_pfx _hl_label; do
		if [ "$_hl_addr" = "$1" ]; then
			echo "$_hl_dev $_hl_addr $_hl_pfx $_hl_label"
			break
		fi
	done
}

# hb_ip_find_subnet IP [DEV] : prints "DEV PREFIX" of the first configured
# address (other than IP itself, and on DEV when given) whose subnet holds IP.
hb_ip_find_subnet() {
	hb_ip_addrs | while read -r _hf_dev _hf_addr _hf_pfx _hf_label; do
		[ "$_hf_addr" = "$1" ] && continue
		[ -n "${2:-}" ] && [ "$_hf_dev" != "$2" ] && continue
		# a /32 (or a lone host address) says nothing about a subnet
		[ "$_hf_pfx" -ge 32 ] && continue
		if hb_same_net "$1" "$_hf_addr" "$_hf_pfx"; then
			echo "$_hf_dev $_hf_pfx"
			break
		fi
	done
}

# hb_ipaddr_run alias|plain SPEC OP
#   The body of IPaddr (alias: the address gets a label DEV:N) and IPaddr2
#   (plain: no label unless one is asked for with DEV:LABEL).
#   SPEC is  IP[/MASK[/DEV[/BROADCAST]]]  or  IP/MASK/BROADCAST ; MASK is a
#   prefix length or a dotted netmask.
hb_ipaddr_run() {
	_ia_mode=$1
	shift
	[ $# -eq 2 ] || hb_bad_usage
	_ia_op=$2
	_ia_rest=$1
	_ia_vip=${_ia_rest%%/*}
	_ia_mask=''
	_ia_nic=''
	_ia_brd=''
	_ia_label=''
	case $_ia_rest in */*) _ia_rest=${_ia_rest#*/} ;; *) _ia_rest= ;; esac
	if [ -n "$_ia_rest" ]; then
		_ia_mask=${_ia_rest%%/*}
		case $_ia_rest in */*) _ia_rest=${_ia_rest#*/} ;; *) _ia_rest= ;; esac
	fi
	if [ -n "$_ia_rest" ]; then
		_ia_field=${_ia_rest%%/*}
		case $_ia_rest in */*) _ia_rest=${_ia_rest#*/} ;; *) _ia_rest= ;; esac
		case $_ia_field in
		[0-9]*) _ia_brd=$_ia_field ;;
		*)
			_ia_nic=$_ia_field
			_ia_brd=${_ia_rest%%/*}
			;;
		esac
	fi
	case $_ia_nic in
	*:*)
		_ia_label=$_ia_nic
		_ia_nic=${_ia_nic%%:*}
		;;
	esac

	case $_ia_op in
	start | stop | status | monitor) ;;
	usage | help | -h | --help)
		usage
		exit 0
		;;
	*) hb_bad_usage ;;
	esac

	if ! hb_ip2int "$_ia_vip" >/dev/null; then
		[ "$_ia_op" = status ] || [ "$_ia_op" = monitor ] && hb_report stopped
		hb_die "not an IPv4 address: '$_ia_vip' (in '$1')"
	fi
	_ia_prefix=
	if [ -n "$_ia_mask" ] && ! _ia_prefix=$(hb_mask2prefix "$_ia_mask"); then
		hb_die "bad netmask '$_ia_mask' in '$1' (give a prefix length or a dotted mask)"
	fi
	if [ -n "$_ia_brd" ] && ! hb_ip2int "$_ia_brd" >/dev/null; then
		hb_die "bad broadcast address '$_ia_brd' in '$1'"
	fi
	hb_need IP "${HA_BIN_IP:-}" "ip (package iproute2)" ip

	_ia_now=$(hb_ip_lookup "$_ia_vip")
	case $_ia_op in
	status | monitor)
		if [ -n "$_ia_now" ]; then hb_report running; else hb_report stopped; fi
		;;
	stop)
		hb_statedir
		hb_garp_stop "$_ia_vip"
		if [ -z "$_ia_now" ]; then
			hb_log info "$_ia_vip is not configured here: nothing to stop"
			exit 0
		fi
		read -r _ia_dev _ia_addr _ia_pfx _ia_lbl <<EOT
$_ia_now
EOT
		if ! "$IP" addr del "$_ia_addr/$_ia_pfx" dev "$_ia_dev"; then
			hb_die "could not remove $_ia_addr/$_ia_pfx from $_ia_dev"
		fi
		hb_log info "removed $_ia_addr/$_ia_pfx from $_ia_lbl"
		exit 0
		;;
	esac

	# start
	if [ -n "$_ia_now" ]; then
		hb_log info "$_ia_vip is already configured (${_ia_now##* }): nothing to start"
		exit 0
	fi
	hb_statedir
	if [ -z "$_ia_nic" ] || [ -z "$_ia_prefix" ]; then
		_ia_found=$(hb_ip_find_subnet "$_ia_vip" "$_ia_nic")
		if [ -z "$_ia_found" ]; then
			if [ -n "$_ia_nic" ]; then
				hb_die "no address on $_ia_nic has a subnet holding $_ia_vip, so the netmask is unknown: write it as $_ia_vip/BITS/$_ia_nic"
			fi
			hb_die "no interface has a subnet holding $_ia_vip: write it as $_ia_vip/BITS/INTERFACE"
		fi
		[ -z "$_ia_nic" ] && _ia_nic=${_ia_found% *}
		[ -z "$_ia_prefix" ] && _ia_prefix=${_ia_found#* }
	fi
	if ! "$IP" -o link show dev "$_ia_nic" >/dev/null 2>&1; then
		hb_die "interface $_ia_nic does not exist"
	fi

	if [ "$_ia_mode" = alias ] && [ -z "$_ia_label" ]; then
		_ia_used=" $(hb_ip_addrs | while read -r _d _a _p _l; do printf '%s ' "$_l"; done)"
		_ia_n=0
		while :; do
			case $_ia_used in
			*" $_ia_nic:$_ia_n "*) _ia_n=$((_ia_n + 1)) ;;
			*) break ;;
			esac
		done
		_ia_label=$_ia_nic:$_ia_n
	fi
	if [ -n "$_ia_label" ] && [ ${#_ia_label} -gt 15 ]; then
		hb_die "interface label $_ia_label is longer than 15 characters"
	fi

	set -- addr add "$_ia_vip/$_ia_prefix"
	if [ -n "$_ia_brd" ]; then
		set -- "$@" brd "$_ia_brd"
	elif [ "$_ia_prefix" -le 30 ]; then
		set -- "$@" brd +
	fi
	set -- "$@" dev "$_ia_nic"
	[ -n "$_ia_label" ] && set -- "$@" label "$_ia_label"
	if ! "$IP" "$@"; then
		hb_die "could not add $_ia_vip/$_ia_prefix to $_ia_nic"
	fi
	hb_log info "added $_ia_vip/$_ia_prefix on ${_ia_label:-$_ia_nic}"
	hb_garp "$_ia_nic" "$_ia_vip"
	exit 0
}
