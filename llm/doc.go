// Package llm holds the language-model clients behind panther.Model, one per wire format rather than
// per vendor: OpenAI-compatible chat completions (OpenAI, Ollama, llama.cpp, vLLM, Z.ai, ...) and
// Anthropic messages (Anthropic, MiniMax and other Anthropic-compatible endpoints).
//
// Each client is a thin one of our own over net/http, so that the binary carries no SDK and the
// agent runtime sees only panther's conversation types. Both stream over server-sent events when
// Complete is given an onEvent callback, deliver a tool call only once its arguments are complete
// (arguments that are not a JSON object come as {} with the text in ToolCall.Malformed, for the
// agent to report back to the model), retry what may succeed later (rate limits, overload, 5xx, network errors) but
// never a stream of which part was already delivered, and keep API keys out of every error, log line
// and formatted value.
//
// Errors about the caller's request (a conversation longer than the model's context, a malformed
// message) wrap panther.ErrInvalid; errors about the server, its answers or the credentials wrap
// panther.ErrUnavailable; a cancelled context is returned as the context's error.
package llm
