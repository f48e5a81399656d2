package conf

import (
	"bytes"
	"encoding/json"
	"strings"
	"unsafe"
)

// decodeRequest decodes a request line. A batch as ferryctl sends it,
// {"batch":[...]}, is decoded by scanCommands alone: through
// encoding/json, the line would be checked and then skipped over byte by
// byte before Commands.UnmarshalJSON saw it, which took longer than the
// decoding. Anything else goes to encoding/json. The words may share the
// line's memory: the caller must not change the line afterwards.
func decodeRequest(line []byte, req *Request) error {
	const batchPrefix = `{"batch":`
	s := bytes.TrimRight(line, " \t\r\n")
	if bytes.HasPrefix(s, []byte(batchPrefix)) && s[len(s)-1] == '}' {
		if cmds, ok := scanCommands(unsafe.String(&s[len(batchPrefix)], len(s)-1-len(batchPrefix))); ok {
			*req = Request{Batch: cmds}
			return nil
		}
	}
	return json.Unmarshal(line, req)
}

// Commands are a batch's commands, each its words. A full table's load
// is a million of them: they decode without reflection and with one
// string for all the words of a request, and anything the fast path does
// not expect (an escape or non-ASCII in a word, a null) goes to
// encoding/json.
type Commands [][]string

// UnmarshalJSON decodes an array of arrays of strings.
func (c *Commands) UnmarshalJSON(b []byte) error {
	if cmds, ok := scanCommands(string(b)); ok { // b is the decoder's: copied
		*c = cmds
		return nil
	}
	var v [][]string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = v
	return nil
}

// scanCommands decodes s when it is JSON's null or an array of arrays of
// ASCII strings without escapes; ok is false for anything else, valid
// JSON or not.
func scanCommands(s string) (cmds Commands, ok bool) {
	i := skipSpace(s, 0)
	if strings.HasPrefix(s[i:], "null") {
		return nil, skipSpace(s, i+4) == len(s)
	}
	if i == len(s) || s[i] != '[' {
		return nil, false
	}
	words := make([]string, 0, strings.Count(s, `"`)/2)
	cmds = Commands{}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == ']' {
		return cmds, skipSpace(s, i+1) == len(s)
	}
	for {
		if i == len(s) || s[i] != '[' {
			return nil, false
		}
		first := len(words)
		i = skipSpace(s, i+1)
		if i < len(s) && s[i] == ']' {
			i++
		} else {
			for {
				if i == len(s) || s[i] != '"' {
					return nil, false
				}
				end := strings.IndexByte(s[i+1:], '"')
				if end < 0 {
					return nil, false
				}
				w := s[i+1 : i+1+end]
				if !plainWord(w) {
					return nil, false
				}
				words = append(words, w)
				i = skipSpace(s, i+2+end)
				if i == len(s) {
					return nil, false
				}
				if s[i] == ']' {
					i++
					break
				}
				if s[i] != ',' {
					return nil, false
				}
				i = skipSpace(s, i+1)
			}
		}
		cmds = append(cmds, words[first:len(words):len(words)])
		i = skipSpace(s, i)
		if i == len(s) {
			return nil, false
		}
		if s[i] == ']' {
			return cmds, skipSpace(s, i+1) == len(s)
		}
		if s[i] != ',' {
			return nil, false
		}
		i = skipSpace(s, i+1)
	}
}

// plainWord reports whether w is a valid JSON string's content that reads
// the same in Go: printable ASCII without escapes (encoding/json replaces
// invalid UTF-8).
func plainWord(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] == '\\' || w[i] < 0x20 || w[i] >= 0x80 {
			return false
		}
	}
	return true
}

// skipSpace returns the index of the first byte from i on that is not
// JSON white space.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}
