//go:build !tsnet

package main

import "context"

// tsnetBuilt says whether this build can join a tailnet (-tags tsnet).
const tsnetBuilt = false

// listenTailnet is the tsnet build's; this build has none, so that the default binary carries
// none of tailscale.com.
func listenTailnet(context.Context, tailnetOptions) (*tailnetListeners, error) {
	return nil, errNoTsnet
}
