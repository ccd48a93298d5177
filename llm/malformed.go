package llm

import (
	"strings"

	"panther/internal/httpx"
)

// maxMalformedChars bounds the malformed arguments kept for the model to see.
const maxMalformedChars = 2000

// malformedText is tool arguments that are not a JSON object, cleaned and bounded, as the agent
// shows them back to the model.
func malformedText(b []byte) string {
	s := strings.ToValidUTF8(httpx.CleanText(string(b)), "")
	if len(s) > maxMalformedChars {
		s = strings.ToValidUTF8(s[:maxMalformedChars], "") + "…"
	}
	return s
}
