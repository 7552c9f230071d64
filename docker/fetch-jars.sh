#!/usr/bin/env bash
# Download jars from Maven Central into a folder, each checked against its pinned SHA-1 (the
# digest Maven Central publishes beside every artifact, as <jar>.sha1); a mismatch fails.
#   fetch-jars.sh DEST group:artifact:version:sha1 ...
set -euo pipefail

MAVEN_CENTRAL="${MAVEN_CENTRAL:-https://repo1.maven.org/maven2}"
dest="$1"
shift
mkdir -p "${dest}"
for spec in "$@"; do
  IFS=: read -r group artifact version sha1 <<<"${spec}"
  jar="${artifact}-${version}.jar"
  url="${MAVEN_CENTRAL}/${group//.//}/${artifact}/${version}/${jar}"
  python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "${url}" "${dest}/${jar}.part"
  actual="$(sha1sum "${dest}/${jar}.part" | cut -d' ' -f1)"
  if [ "${actual}" != "${sha1}" ]; then
    rm -f "${dest}/${jar}.part"
    echo "${url}: sha1 ${actual}, expected ${sha1}" >&2
    exit 1
  fi
  mv "${dest}/${jar}.part" "${dest}/${jar}"
  echo "${jar}: sha1 ${sha1} verified"
done
