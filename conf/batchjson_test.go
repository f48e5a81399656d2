package conf

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCommandsJSON(t *testing.T) {
	for _, in := range []string{
		`null`, `[]`, ` [ ] `, `[[]]`, `[["route","add","10.0.0.0/8","via","192.0.2.2"]]`,
		`[ ["a" , "b"] , [ "c" ] ,[]]`, `[["a\"b"]]`, `[["\u00e9"]]`, `[["é", ""]]`, `[null]`, `[["a"],null]`,
	} {
		var got Commands
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var want [][]string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual([][]string(got), want) {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{`[1]`, `[["a", 2]]`, `{}`, `"x"`, `[[true]]`} {
		var got Commands
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

// FuzzCommandsJSON holds the fast decoder to encoding/json's answer on
// every valid document.
func FuzzCommandsJSON(f *testing.F) {
	for _, s := range []string{`[["route","add","10.0.0.0/8"]]`, `[[],["a"]]`, `null`, `[["a\n"]]`, `[ [ "x" ] ]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		var want [][]string
		werr := json.Unmarshal([]byte(in), &want)
		cmds, ok := scanCommands([]byte(in))
		if !ok {
			return
		}
		if werr != nil {
			t.Fatalf("%q: fast decode took what encoding/json refuses: %v", in, werr)
		}
		if !reflect.DeepEqual([][]string(cmds), want) {
			t.Fatalf("%q: %q, want %q", in, cmds, want)
		}
	})
}
