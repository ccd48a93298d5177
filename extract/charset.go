package extract

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeHTML returns body as valid UTF-8. It follows the byte order mark, then a charset declared in
// the first KB (meta charset, meta http-equiv, XML declaration). golang.org/x/net/html/charset would
// need golang.org/x/text in go.mod, so only the encodings that matter in practice are decoded here:
// UTF-8, UTF-16 (with BOM) and the Latin-1 family, read as windows-1252 as browsers do. Bytes of any
// other declared encoding that are not valid UTF-8 are read as windows-1252 too: garbled, but valid.
func decodeHTML(body []byte) string {
	switch {
	case bytes.HasPrefix(body, []byte{0xEF, 0xBB, 0xBF}):
		return validUTF8(body[3:])
	case bytes.HasPrefix(body, []byte{0xFF, 0xFE}):
		return decodeUTF16(body[2:], false)
	case bytes.HasPrefix(body, []byte{0xFE, 0xFF}):
		return decodeUTF16(body[2:], true)
	}
	if isLatin1Label(declaredCharset(body)) {
		return decodeWindows1252(body)
	}
	if utf8.Valid(body) {
		return string(body)
	}
	// Undeclared (or declared UTF-8 / unknown) but not valid UTF-8: a mostly-UTF-8 page with a few bad
	// bytes keeps its UTF-8; a page that is mostly high bytes in isolation is single-byte text.
	if mostlyUTF8(body) {
		return strings.ToValidUTF8(string(body), "\uFFFD")
	}
	return decodeWindows1252(body)
}

// validUTF8 converts b to a string, replacing invalid sequences.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// mostlyUTF8 says whether the multi-byte sequences of b are more often valid than not.
func mostlyUTF8(b []byte) bool {
	good, bad := 0, 0
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			bad++
		} else {
			good++
		}
		i += n
	}
	return good > bad
}

func decodeUTF16(b []byte, bigEndian bool) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if bigEndian {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			u = append(u, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	return string(utf16.Decode(u))
}

// cp1252 maps 0x80–0x9F; the rest of windows-1252 is Latin-1.
var cp1252 = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8D, 'Ž', 0x8F,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9D, 'ž', 'Ÿ',
}

func decodeWindows1252(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/8)
	start := 0
	for i, c := range b {
		if c < 0x80 {
			continue
		}
		sb.Write(b[start:i])
		if c < 0xA0 {
			sb.WriteRune(cp1252[c-0x80])
		} else {
			sb.WriteRune(rune(c))
		}
		start = i + 1
	}
	sb.Write(b[start:])
	return sb.String()
}

func isLatin1Label(l string) bool {
	switch l {
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252",
		"x-cp1252", "us-ascii", "ascii", "iso-8859-15", "iso8859-15", "latin-9", "ansi_x3.4-1968", "cp819", "ibm819":
		return true
	}
	return false
}

// declaredCharset finds the charset label a page declares in its first KB, lower-cased, or "".
func declaredCharset(body []byte) string {
	head := body
	if len(head) > 1024 {
		head = head[:1024]
	}
	for i := 0; i < len(head); {
		j := indexFold(head[i:], "charset")
		if j < 0 {
			break
		}
		i += j + len("charset")
		k := i
		for k < len(head) && (head[k] == ' ' || head[k] == '\t' || head[k] == '\n' || head[k] == '\r') {
			k++
		}
		if k >= len(head) || head[k] != '=' {
			continue
		}
		k++
		for k < len(head) && (head[k] == ' ' || head[k] == '"' || head[k] == '\'') {
			k++
		}
		e := k
		for e < len(head) && isLabelByte(head[e]) {
			e++
		}
		if e > k {
			return strings.ToLower(string(head[k:e]))
		}
	}
	// <?xml version="1.0" encoding="ISO-8859-1"?>
	if bytes.HasPrefix(head, []byte("<?xml")) {
		if end := bytes.Index(head, []byte("?>")); end > 0 {
			decl := head[:end]
			if j := bytes.Index(decl, []byte("encoding=")); j >= 0 {
				v := decl[j+len("encoding="):]
				if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
					v = v[1:]
				}
				e := 0
				for e < len(v) && isLabelByte(v[e]) {
					e++
				}
				return strings.ToLower(string(v[:e]))
			}
		}
	}
	return ""
}

func isLabelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
}

// indexFold is bytes.Index for an ASCII lower-case needle, ignoring case in s.
func indexFold(s []byte, needle string) int {
	n := len(needle)
	for i := 0; i+n <= len(s); i++ {
		if s[i]|0x20 != needle[0] {
			continue
		}
		ok := true
		for j := 1; j < n; j++ {
			if s[i+j]|0x20 != needle[j] {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}
