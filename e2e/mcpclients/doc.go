// Package mcpclients holds end-to-end tests only: they build the panther binary and have the real MCP
// clients its users run speak to it, over stdio (`panther mcp`) and over streamable HTTP (`panther
// serve` at /mcp): the MCP Inspector in its CLI mode, and OpenCode (`opencode mcp list`, and `opencode
// run` with a scripted OpenAI-compatible model on loopback that calls panther's search tool).
//
// The clients are npm packages that scripts/setup-npm.sh installs into .cache/npm-tools (or
// $PANTHER_NPM_TOOLS). Without them the tests skip, unless PANTHER_TEST_REQUIRE_NPM=1, which makes
// them fail instead. Nothing leaves the machine: every server is on loopback, and the clients run
// with HOME and the XDG folders in temporary directories, so they read no one's configuration.
package mcpclients
