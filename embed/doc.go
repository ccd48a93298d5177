// Package embed holds the panther.Embedder implementations: OpenAI, a client for any server that
// speaks OpenAI's /v1/embeddings wire format (OpenAI, Ollama, llama.cpp, vLLM, TEI, Z.ai), and the
// built-in embedder that works offline with no server at all.
//
// Every implementation names its vector space in Model(), and the knowledge base records that name
// with each vector, so that vectors of different models (or of one model at different lengths) are
// never compared with each other.
package embed
