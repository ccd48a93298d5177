# Written by nix/update-vendor-hash.sh: run it after changing go.mod or go.sum (nix-check.sh fails
# until then). A `nix build .#panther` confirms vendorHash; on a mismatch it prints the right one.
{
  # The NAR hash of the Go module cache buildGoModule downloads (proxyVendor = true).
  vendorHash = "sha256-9DAKf6j2yjlxrdsw2ZAkgfva7s1+vgoj2ciPmqNvKUU=";
  # sha256 of go.mod followed by go.sum when vendorHash was computed.
  goModSum = "928eb93294a228a2a31af91062160cefd0829a2b695892c58482a92da2837c06";
}
