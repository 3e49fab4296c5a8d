#!/usr/bin/env bash
# Builds the lstmserve container image from deploy/Dockerfile: with
# `docker build` where a Docker engine runs, else with `buildah bud`
# (Debian package buildah; chroot isolation, which works where namespaces
# are restricted, as in a CI sandbox). Where no registry can be reached, the
# Debian 12 base image is first made here with debootstrap from Debian's
# archive and kept as localhost/lstmserve-base:bookworm.
#
#   deploy/build-image.sh [--tag lstmserve:latest] [--base IMAGE]
#
# Exits 77 when neither docker (with an engine) nor buildah is available.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=lstmserve:latest
base=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "build-image: $*" >&2; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
elif command -v buildah >/dev/null; then
  engine=buildah
  # vfs needs no overlay mounts, which sandboxes often forbid.
  export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
  export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
else
  say "neither a Docker engine nor buildah is available (apt-get install buildah)"
  exit 77
fi

# The Debian 12 base: the registry's debian:bookworm-slim if it can be
# pulled, else one made with debootstrap.
if [[ -z "$base" ]]; then
  if [[ $engine == docker ]] && timeout 120 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    base=debian:bookworm-slim
  elif [[ $engine == buildah ]] && timeout 120 buildah pull -q docker.io/library/debian:bookworm-slim >/dev/null 2>&1; then
    base=docker.io/library/debian:bookworm-slim
  else
    base=localhost/lstmserve-base:bookworm
    if ! $engine inspect "$base" >/dev/null 2>&1; then
      command -v debootstrap >/dev/null || { say "no registry and no debootstrap (apt-get install debootstrap)"; exit 1; }
      mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
      mirror=${mirror:-http://deb.debian.org/debian}
      root=$(mktemp -d)
      trap 'rm -rf "$root"' EXIT
      say "no registry reachable: making $base with debootstrap from $mirror"
      debootstrap --variant=minbase bookworm "$root" "$mirror" >&2
      # Slim, as debian:bookworm-slim is: no documentation, manuals or
      # translations, no package lists or caches.
      rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
             "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
             "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/debconf/*-old \
             "$root"/var/log/*.log
      # As Debian's images do: apt keeps no downloaded packages.
      printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$root/etc/apt/apt.conf.d/docker-clean"
      printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
        'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
        >"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" >"$root/etc/apt/sources.list.d/debian.sources"
      rm -f "$root/etc/apt/sources.list"
      if [[ $engine == docker ]]; then
        tar -C "$root" -c . | docker import - "$base" >/dev/null
      else
        ctr=$(buildah from scratch)
        buildah copy "$ctr" "$root" / >/dev/null
        buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
          --cmd /bin/bash "$ctr"
        buildah commit -q "$ctr" "$base" >/dev/null
        buildah rm "$ctr" >/dev/null
      fi
    fi
  fi
fi

say "building $tag from $base with $engine"
if [[ $engine == docker ]]; then
  docker build -f deploy/Dockerfile --build-arg BASE="$base" -t "$tag" .
else
  buildah bud --isolation chroot --layers -f deploy/Dockerfile \
    --build-arg BASE="$base" -t "$tag" .
fi

# The runtime image's size (decimal MB, as docker and buildah print it).
if [[ $engine == docker ]]; then
  mb=$(( $(docker image inspect --format '{{.Size}}' "$tag") / 1000000 ))
else
  human=$(buildah images --format '{{.Size}}' "$tag" | head -1)  # "97.3 MB"
  mb=$(awk -v s="$human" 'BEGIN { split(s, a, " "); f = a[2] == "GB" ? 1000 : a[2] == "kB" ? 0.001 : 1; printf "%d", a[1] * f }')
fi
say "built $tag: ${mb} MB"
if (( mb >= 150 )); then say "the image is ${mb} MB, over 150 MB"; exit 1; fi
