#!/usr/bin/env bash
# Build batchaction's container image from ./Dockerfile without a Docker
# daemon (buildah + podman, vfs storage, chroot isolation) and smoke-test it.
#
# Meant for a Debian machine where we are root and can reach Debian's archive
# and PyPI (possibly through a mirror/proxy with its own CA bundle), but maybe
# no container registry.
#
# Usage: .ci/container.sh [COMMAND] [ARGS...]
#   all (default)  setup + base + build + smoke
#   setup          apt-get install buildah, podman, runc, debootstrap (if missing)
#   base           make sure debian:trixie-slim is in storage: pull it, or, when
#                  no registry answers, build it with debootstrap from the
#                  host's Debian mirror (cached; see BASE_MAX_AGE_DAYS)
#   build          build the image (runs setup and base first)
#   smoke          `batchaction --version` in the image, a `git push` from the
#                  image to a bare repo in a bind-mounted host dir, and a check
#                  that no build-host setting is left in the image
#   run ARGS...    `podman run --rm` with this script's storage and flags; ARGS
#                  are podman-run options then the image (and its arguments):
#                    .ci/container.sh run -v "$PWD/ws:/github/workspace" \
#                      -e GITHUB_EVENT_NAME=workflow_dispatch localhost/batchaction:ci
#                  runs the image's real entrypoint (`batchaction action`) the
#                  way GitHub does (as root, --workdir /github/workspace when
#                  a volume is mounted there), on the host network.
#   podman ARGS... / buildah ARGS...
#                  run that tool against this script's storage and config
#   env            print the environment to use podman/buildah by hand
#   clean          remove this script's image storage and cached base rootfs
#
# Environment:
#   BATCHACTION_IMAGE            image name (default localhost/batchaction:ci)
#   BATCHACTION_CONTAINER_STATE  state dir: vfs storage, cached base, configs
#                                (default /var/lib/batchaction-ci)
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR
#                                override the Debian archive URIs read from the
#                                host's apt sources
#   BASE_PULL_TIMEOUT            seconds to try pulling the base (default 30)
#   BASE_MAX_AGE_DAYS            refresh (pull, or debootstrap) a base image or
#                                cached rootfs older than this (default 7)
#   DEBOOTSTRAP_KEYRING          keyring for debootstrap, if the host's
#                                debian-archive-keyring lacks trixie's keys
#
# Prints "container: build S s, image M MB" (uncompressed size). Exits
# non-zero with an error and a hint on any failure.
#
# Host settings (Debian mirror, pip's CA bundle and index, proxies) reach the
# build only through read-only bind mounts and build args of the Dockerfile's
# build stage, so none of them ends up in the final image; `smoke` checks.
# Sandbox notes (see configure): runc instead of crun (hybrid cgroups), and
# ulimits pinned to the host's hard limits (root may not raise them).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${BATCHACTION_IMAGE:-localhost/batchaction:ci}
STATE=${BATCHACTION_CONTAINER_STATE:-/var/lib/batchaction-ci}
BASE_IMAGE=docker.io/library/debian:trixie-slim
BASE_SUITE=trixie
BASE_PULL_TIMEOUT=${BASE_PULL_TIMEOUT:-30}
BASE_MAX_AGE_DAYS=${BASE_MAX_AGE_DAYS:-7}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

say() { printf 'container: %s\n' "$*" >&2; }
die() {
    printf 'container: error: %s\n' "$1" >&2
    [[ $# -gt 1 ]] && printf 'container: hint: %s\n' "${@:2}" >&2
    exit 1
}

# --- storage and tool configuration ----------------------------------------
# Own graph root with the vfs driver (works on any filesystem, needs no
# fuse-overlayfs or kernel overlay support), and a containers.conf that works
# without systemd: cgroupfs, file events, no journald logging. Further:
#  - runtime runc: crun 1.8 refuses hosts with hybrid cgroups (v1 controllers
#    plus a cgroup2 mount: "cgroups in hybrid mode not supported"); runc
#    handles v1, hybrid and v2.
#  - default_ulimits at the host's own hard limits: podman otherwise asks for
#    nofile=1048576 and nproc above its own (lowered) limit, which fails with
#    EPERM where even root may not raise a hard limit (some sandboxes/VMs).
configure() {
    mkdir -p "$STATE/storage" "$STATE/run" "$STATE/conf" "$STATE/base" "$STATE/tmp"
    cat >"$STATE/conf/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
EOF
    local nofile nproc
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    [[ $nofile =~ ^[0-9]+$ ]] || nofile=1048576
    [[ $nproc =~ ^[0-9]+$ ]] || nproc=32768
    ((nproc > 32768)) && nproc=32768
    cat >"$STATE/conf/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$STATE/run/libpod-tmp"
EOF
    export CONTAINERS_STORAGE_CONF="$STATE/conf/storage.conf"
    export CONTAINERS_CONF="$STATE/conf/containers.conf"
    export STORAGE_DRIVER=vfs
    export BUILDAH_ISOLATION=chroot
    export TMPDIR="$STATE/tmp"
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (buildah with vfs storage and debootstrap need it)" \
        "run it with sudo, or in a root CI job"
}

# --- setup --------------------------------------------------------------------
setup() {
    need_root
    local pkgs=(buildah podman runc debootstrap uidmap ca-certificates)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        command -v apt-get >/dev/null || die "apt-get not found; this script needs a Debian-based host"
        say "installing ${missing[*]}"
        # debian-archive-keyring is upgraded too: debootstrap of a newer release
        # needs that release's signing keys (bookworm's 2023.3+deb12u2 has trixie's).
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
            die "apt-get update failed" "check the host's apt sources and network"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" debian-archive-keyring >/dev/null ||
            die "apt-get install ${missing[*]} failed" "install them by hand and re-run"
    fi
}

# --- host mirror discovery ----------------------------------------------------
# Prints "MAIN_URI SECURITY_URI" (security may be '-') for the host's own
# Debian release, read from deb822 *.sources files, then one-line *.list files.
host_mirrors() {
    local codename main="" sec="" f
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [[ -n $codename ]] || die "cannot read VERSION_CODENAME from /etc/os-release" \
        "set DEBIAN_MIRROR (and DEBIAN_SECURITY_MIRROR) to Debian archive URIs"
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        # Print "URI SUITE" for every suite of every stanza with Types: deb.
        awk -v RS= '
            {
                types = ""; uris = ""; suites = ""; enabled = "yes"
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    line = lines[i]
                    if (line ~ /^[ \t]*#/) continue
                    if (line ~ /^Types:/)   { sub(/^Types:[ \t]*/, "", line); types = line }
                    if (line ~ /^URIs:/)    { sub(/^URIs:[ \t]*/, "", line); uris = line }
                    if (line ~ /^Suites:/)  { sub(/^Suites:[ \t]*/, "", line); suites = line }
                    if (line ~ /^Enabled:/) { sub(/^Enabled:[ \t]*/, "", line); enabled = line }
                }
                if (enabled == "no" || (" " types " ") !~ / deb /) next
                split(uris, u, /[ \t]+/)
                m = split(suites, s, /[ \t]+/)
                for (j = 1; j <= m; j++) print u[1], s[j]
            }' "$f"
    done >"$STATE/tmp/apt-suites"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' "$f"
    done >>"$STATE/tmp/apt-suites"
    main=$(awk -v c="$codename" '$2 == c { print $1; exit }' "$STATE/tmp/apt-suites")
    sec=$(awk -v c="$codename-security" '$2 == c || $2 == c "/updates" { print $1; exit }' "$STATE/tmp/apt-suites")
    main=${DEBIAN_MIRROR:-$main}
    sec=${DEBIAN_SECURITY_MIRROR:-${sec:--}}
    [[ $main =~ ^(https?|file):// ]] || die "no usable Debian mirror for '$codename' in the host's apt sources (found '${main:-nothing}')" \
        "set DEBIAN_MIRROR=<URI of a Debian archive mirror> (and DEBIAN_SECURITY_MIRROR)"
    [[ $sec == - || $sec =~ ^(https?|file):// ]] || sec=-
    printf '%s %s\n' "${main%/}" "${sec%/}"
}

# --- base image ---------------------------------------------------------------
have_image() { podman image exists "$1" 2>/dev/null; }

age_days() { echo $((($(date +%s) - $(stat -c %Y "$1")) / 86400)); }

base() {
    need_root
    configure
    local created=0
    if have_image "$BASE_IMAGE"; then
        created=$(podman image inspect --format '{{.Created.Unix}}' "$BASE_IMAGE" 2>/dev/null || echo 0)
        if (($(date +%s) - created < BASE_MAX_AGE_DAYS * 86400)); then
            say "base $BASE_IMAGE already in storage"
            return
        fi
        say "base $BASE_IMAGE in storage is older than $BASE_MAX_AGE_DAYS days; refreshing it"
    fi
    say "pulling $BASE_IMAGE (timeout ${BASE_PULL_TIMEOUT}s)"
    if timeout "$BASE_PULL_TIMEOUT" podman pull -q "$BASE_IMAGE" >/dev/null 2>"$STATE/tmp/pull.log"; then
        say "pulled $BASE_IMAGE"
        return
    fi
    say "pull failed: $(tail -n1 "$STATE/tmp/pull.log" | cut -c1-160)"
    say "no registry reachable; building the base with debootstrap"
    local tarball="$STATE/base/debian-$BASE_SUITE-slim.tar"
    if [[ -s $tarball ]] && (($(age_days "$tarball") < BASE_MAX_AGE_DAYS)); then
        say "using cached rootfs $tarball"
    else
        debootstrap_base "$tarball"
    fi
    tar_import "$tarball"
}

debootstrap_base() {
    local tarball=$1 mirrors main sec rootfs
    mirrors=$(host_mirrors)
    read -r main sec <<<"$mirrors"
    rootfs="$STATE/base/rootfs"
    remove_tree "$rootfs"
    say "debootstrap --variant=minbase $BASE_SUITE from the host's mirror"
    # Keyring: debootstrap checks the Release signature with the host's
    # /usr/share/keyrings/debian-archive-keyring.gpg. Bookworm's
    # debian-archive-keyring (2023.3+deb12u2, installed/upgraded by `setup`)
    # already holds trixie's archive and release keys, so no --keyring is
    # needed. On an older host whose keyring lacks them, upgrade
    # debian-archive-keyring from <codename>-updates, or pass a newer
    # keyring file via DEBOOTSTRAP_KEYRING.
    local keyring_opt=()
    [[ -n ${DEBOOTSTRAP_KEYRING:-} ]] && keyring_opt=(--keyring "$DEBOOTSTRAP_KEYRING")
    if ! debootstrap --variant=minbase "${keyring_opt[@]}" "$BASE_SUITE" "$rootfs" "$main" \
        >"$STATE/tmp/debootstrap.log" 2>&1; then
        tail -n 20 "$STATE/tmp/debootstrap.log" >&2
        if grep -qiE 'signature|NO_PUBKEY|keyring' "$STATE/tmp/debootstrap.log"; then
            die "debootstrap could not verify $BASE_SUITE's Release file" \
                "apt-get install debian-archive-keyring from the host's -updates suite, or set DEBOOTSTRAP_KEYRING=<keyring with $BASE_SUITE's keys>"
        fi
        die "debootstrap $BASE_SUITE from $main failed (log: $STATE/tmp/debootstrap.log)" \
            "check that the mirror serves $BASE_SUITE, or set DEBIAN_MIRROR"
    fi
    slim_rootfs "$rootfs" "$main" "$sec"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    remove_tree "$rootfs"
}

# rm -rf that first unmounts whatever a failed debootstrap may have left
# mounted inside (proc, sys, dev), and never crosses into another filesystem.
remove_tree() {
    local d=${1:?} m
    [[ -e $d ]] || return 0
    while read -r m; do
        if [[ -n $m ]]; then umount -l "$m" 2>/dev/null || true; fi
    done < <(findmnt -rn -o TARGET | awk -v d="$d/" 'index($0 "/", d) == 1' | sort -r)
    rm -rf --one-file-system "$d"
}

# Make a minbase rootfs look like Debian's official -slim image: deb822
# sources naming the archive it was built from (the mirrors this machine's own
# apt configuration names: MAIN, and SECURITY or '-'), no docs/man
# pages/locales (and dpkg told to keep leaving them out), no apt lists or
# downloaded .debs, no host files.
slim_rootfs() {
    local r=${1:?} main=${2:?} sec=${3:?}
    [[ $r != / && -d $r/etc/apt ]] || die "internal: '$r' is not a debootstrapped rootfs"
    rm -f "$r/etc/apt/sources.list"
    cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $main
Suites: $BASE_SUITE $BASE_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    if [[ $sec != - ]]; then
        cat >>"$r/etc/apt/sources.list.d/debian.sources" <<EOF

Types: deb
URIs: $sec
Suites: $BASE_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# Slim image: leave documentation, manuals and translations out.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    cat >"$r/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
    find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf --one-file-system "$r"/usr/share/{man,groff,info,linda,lintian}/* "$r"/usr/share/locale/*
    rm -rf --one-file-system "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old
    rm -rf --one-file-system "$r"/var/log/* "$r"/tmp/* "$r"/var/tmp/* "${r:?}"/run/* "${r:?}"/dev/* "${r:?}"/proc/* "${r:?}"/sys/*
    : >"$r/etc/resolv.conf"
    : >"$r/etc/hostname"
    rm -f "$r/etc/machine-id" "$r/var/lib/dbus/machine-id"
}

tar_import() {
    local tarball=$1
    podman import -q \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'LABEL org.opencontainers.image.description="Debian trixie minbase, slimmed; built locally with debootstrap"' \
        "$tarball" "$BASE_IMAGE" >/dev/null ||
        die "podman import of $tarball failed" "remove $tarball and re-run to debootstrap afresh"
    say "imported $BASE_IMAGE from $tarball"
}

# --- build-time host settings -------------------------------------------------
# Sets HOST_OPTS to the buildah options that hand the host's settings to the
# build without baking them into the image:
#  - the host's Debian mirror: a generated debian.sources bind-mounted (ro)
#    over the base image's own /etc/apt/sources.list.d/debian.sources in every
#    RUN step; the image keeps Debian's default sources underneath;
#  - pip's CA bundle: $STATE/hostcfg bind-mounted (ro) at /mnt, an empty
#    directory of every Debian image, and PIP_CERT=/mnt/ca.crt as a build arg;
#    a host PyPI mirror (http/https only) as PIP_INDEX_URL. The Dockerfile
#    declares both ARGs in its build stage only;
#  - proxy variables, which are predefined build args.
# Bind-mounting onto paths that already exist matters: buildah 1.28 leaves an
# empty file or directory behind for a mount target it had to create.
host_build_opts() {
    local dir="$STATE/hostcfg" main sec mirrors cert index="" no_valid=""
    remove_tree "$dir"
    mkdir -p "$dir/mnt"
    mirrors=$(host_mirrors)
    read -r main sec <<<"$mirrors"
    # Same leniency as the host's apt: a mirror that is a snapshot may serve
    # Release files past their Valid-Until date.
    if apt-config dump 2>/dev/null | grep -qiE '^Acquire::Check-Valid-Until "(false|no|0)"'; then
        no_valid=$'Check-Valid-Until: no\nCheck-Date: no\n'
    fi
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$main" "$BASE_SUITE" "$BASE_SUITE"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n%s' "$no_valid"
        if [[ $sec != - ]]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$sec" "$BASE_SUITE"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n%s' "$no_valid"
        fi
    } >"$dir/debian.sources"
    HOST_OPTS=(--volume "$dir/debian.sources:/etc/apt/sources.list.d/debian.sources:ro")
    # pip: the host's CA bundle (a TLS-intercepting proxy needs it), and only
    # a real (http/https) index: local find-links or file:// indexes of the
    # host do not exist in the build.
    cert=${PIP_CERT:-}
    [[ -z $cert ]] && cert=$(pip_config global.cert)
    [[ -z $cert && -r $CA_BUNDLE ]] && cert=$CA_BUNDLE
    if [[ -n $cert ]]; then
        [[ -r $cert ]] || die "CA bundle $cert is not readable" "fix PIP_CERT or pip's global.cert"
        cp "$cert" "$dir/mnt/ca.crt"
        HOST_OPTS+=(--volume "$dir/mnt:/mnt:ro" --build-arg PIP_CERT=/mnt/ca.crt)
    fi
    index=${PIP_INDEX_URL:-$(pip_config global.index-url)}
    [[ $index =~ ^https?:// ]] && HOST_OPTS+=(--build-arg "PIP_INDEX_URL=$index")
    local v
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        [[ -n ${!v:-} ]] && HOST_OPTS+=(--build-arg "$v=${!v}")
    done
    return 0
}

pip_config() {
    local py
    for py in python3 python; do
        if command -v "$py" >/dev/null && "$py" -m pip --version >/dev/null 2>&1; then
            "$py" -m pip config get "$1" 2>/dev/null | head -n1 || true
            return
        fi
    done
}

# --- build ----------------------------------------------------------------------
# Prefix each line with the seconds since $1 (to see which step is slow).
stamp() {
    local line
    while IFS= read -r line; do
        printf '%7.1f %s\n' "$(awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" "$line"
    done
}

build() {
    setup
    base
    local f
    for f in Dockerfile requirements/runtime.txt requirements/build.txt pyproject.toml README.md batchaction/__init__.py; do
        [[ -e $ROOT/$f ]] || die "$f is missing in $ROOT" "the image is built from the repository root; restore $f"
    done
    HOST_OPTS=()
    host_build_opts
    say "building $IMAGE from $ROOT/Dockerfile"
    local t0 t1
    t0=$EPOCHREALTIME
    if ! buildah bud --isolation chroot --storage-driver vfs --layers --pull-never \
        "${HOST_OPTS[@]}" -f "$ROOT/Dockerfile" -t "$IMAGE" "$ROOT" 2>&1 |
        stamp "$t0" >"$STATE/tmp/build.log"; then
        tail -n 40 "$STATE/tmp/build.log" >&2
        die "buildah bud failed (full log: $STATE/tmp/build.log)" \
            "see the failing step above; after changing requirements/*.in, recompile the .txt (command in requirements/runtime.in)"
    fi
    t1=$EPOCHREALTIME
    # vfs stores every layer as a full copy, so earlier builds' leftovers add
    # up fast: tag the last layer of the stage before the final one (the
    # Dockerfile's `build` stage, else untagged and "dangling") as
    # $IMAGE-build, then prune whatever is dangling. Cached layers of all
    # stages stay.
    local stage_top
    stage_top=$(awk '
        match($0, /\[[0-9]+\/[0-9]+\] /) {
            split(substr($0, RSTART + 1, RLENGTH - 3), n, "/")
            if (n[1] == n[2]) { print last; exit }
        }
        $2 == "-->" && $3 ~ /^[0-9a-f]+$/ { last = $3 }' "$STATE/tmp/build.log")
    if [[ -n $stage_top ]] && podman tag "$stage_top" "$IMAGE-build" 2>/dev/null; then
        podman image prune -f >/dev/null 2>&1 || true
    else
        say "warning: could not tag the build stage; skipped pruning old layers"
    fi
    local secs size
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    size=$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%.1f", $1 / 1000000 }')
    say "built $IMAGE"
    echo "container: build $secs s, image $size MB"
}

# --- run and smoke ----------------------------------------------------------------
# podman run as root without systemd/daemon: cgroupfs + file events come from
# containers.conf (configure); host network so that loopback services of the
# test (a fake API server, say) are reachable; GitHub's --workdir
# /github/workspace when a volume is mounted there (podman, unlike docker,
# refuses a --workdir that does not exist in the container).
podman_run() {
    configure
    local wd=() a
    for a in "$@"; do
        [[ $a == *:/github/workspace || $a == *:/github/workspace:* ]] && wd=(--workdir /github/workspace)
    done
    podman run --rm --network host "${wd[@]}" "$@"
}

smoke() {
    configure
    have_image "$IMAGE" || die "image $IMAGE not found" "run: $0 build"
    local out
    out=$(podman_run --entrypoint /opt/venv/bin/batchaction "$IMAGE" --version 2>&1) ||
        die "batchaction --version failed in $IMAGE: $out" "check the package's console script"
    say "smoke: batchaction --version -> $out"
    # git is there and can push to a bare repo in a bind-mounted host dir.
    local ws
    ws=$(mktemp -d "$STATE/tmp/ws.XXXXXX")
    git init -q --bare "$ws/remote.git"
    podman_run -v "$ws:/github/workspace" --entrypoint /bin/sh "$IMAGE" -ec '
        git config --global user.name smoke; git config --global user.email smoke@example.invalid
        git config --global --add safe.directory "*"
        git init -q -b main /tmp/w; cd /tmp/w
        echo ok >f; git add f; git commit -q -m smoke
        git push -q /github/workspace/remote.git main' ||
        die "git push from the container to a mounted bare repo failed" "see podman output above"
    [[ $(git --git-dir "$ws/remote.git" log -1 --format=%s main) == smoke ]] ||
        die "the pushed commit did not arrive in the host's bare repo"
    rm -rf "$ws"
    say "smoke: git push to a bind-mounted bare repo works"
    # Nothing of the build host may be baked in: env, history, files. (The base's
    # apt sources name the archive it was built from, as an official image's do.)
    local leaks
    leaks=$(
        podman image inspect "$IMAGE" --format '{{json .Config}}'
        podman history --no-trunc --format '{{.CreatedBy}}' "$IMAGE"
        podman_run --entrypoint /bin/sh "$IMAGE" -c \
            'env; cat /etc/apt/sources.list.d/* 2>/dev/null; ls -A /mnt; ls -d /etc/pip.conf /etc/xdg/pip 2>/dev/null; true'
    )
    local bad=(/mnt/ca.crt ca.crt /etc/pip.conf PIP_CERT PIP_INDEX_URL REQUESTS_CA_BUNDLE Check-Valid-Until)
    local b
    for b in "${bad[@]}"; do
        if grep -qF -- "$b" <<<"$leaks"; then
            die "build-host setting '$b' leaked into $IMAGE" "check host_build_opts in $0"
        fi
    done
    say "smoke: no build-host settings in the image"
}

clean() {
    configure
    say "removing $STATE (image storage, cached base rootfs)"
    # vfs layers are plain directories; buildah/podman may hold mounts there.
    buildah rm --all >/dev/null 2>&1 || true
    podman rm -af >/dev/null 2>&1 || true
    remove_tree "$STATE"
}

main() {
    local cmd=${1:-all}
    [[ $# -gt 0 ]] && shift
    case $cmd in
    all) build && smoke ;;
    setup) setup ;;
    base) setup && base ;;
    build) build ;;
    smoke) smoke ;;
    run)
        [[ $# -gt 0 ]] || die "run needs podman-run options and an image" "e.g. $0 run -v DIR:/github/workspace -e GITHUB_EVENT_NAME=workflow_dispatch $IMAGE"
        podman_run "$@"
        ;;
    podman | buildah) configure && "$cmd" "$@" ;;
    env)
        configure
        printf 'export CONTAINERS_STORAGE_CONF=%q CONTAINERS_CONF=%q STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot\n' \
            "$CONTAINERS_STORAGE_CONF" "$CONTAINERS_CONF"
        ;;
    clean) need_root && clean ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p' ;;
    *) die "unknown command '$cmd'" "see: $0 --help" ;;
    esac
}

main "$@"
