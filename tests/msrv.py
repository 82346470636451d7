"""`make lint`: the rust-version Cargo.toml declares is the truth. Reads `cargo metadata` on
stdin and fails, naming them, if any locked dependency declares a newer rust-version than
fintors does; otherwise says which dependency's need it matches."""
import json
import sys


def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


metadata = json.load(sys.stdin)
ours = next(p for p in metadata["packages"] if p["name"] == "fintors")
declared = version(ours["rust_version"])
needs = [
    (version(p["rust_version"]), p["name"], p["version"])
    for p in metadata["packages"]
    if p.get("rust_version") and p["source"]
]
newer = [n for n in needs if n[0] > declared]
if newer:
    for v, name, ver in sorted(newer, reverse=True):
        print(f"{name} {ver} needs Rust {'.'.join(map(str, v))}", file=sys.stderr)
    print(f"Cargo.toml declares rust-version {ours['rust_version']}: raise it", file=sys.stderr)
    sys.exit(1)
newest = max(needs)
print(f"rust-version {ours['rust_version']}: the newest need is {newest[1]} {newest[2]}'s")
