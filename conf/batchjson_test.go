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
// every document it takes: it must refuse what is not valid JSON.
func FuzzCommandsJSON(f *testing.F) {
	for _, s := range []string{`[["route","add","10.0.0.0/8"]]`, `[[],["a"]]`, `null`, `[["a\n"]]`, `[ [ "x" ] ]`, "[[\"a\x01\"]]", `nullx`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var want [][]string
		werr := json.Unmarshal([]byte(in), &want)
		cmds, ok := scanCommands(in)
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

func TestDecodeRequest(t *testing.T) {
	for _, in := range []string{
		`{"batch":[["route","add","10.0.0.0/8","via","192.0.2.2"],["route","del","10.0.0.0/8"]]}`,
		`{"batch":[["a"]]}` + "\n", `{"batch":null}`, `{"batch":[]}`, `{"args":["route","show"],"json":true}`,
		`{"batch":[["a"]],"json":true}`, `{"batch":[["a\u0041"]]}`, ` {"batch":[["a"]]}`,
	} {
		var got, want Request
		gerr := decodeRequest([]byte(in), &got)
		werr := json.Unmarshal([]byte(in), &want)
		if gerr != nil || werr != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v (%v), want %+v (%v)", in, got, gerr, want, werr)
		}
	}
	for _, in := range []string{`{"batch":[["a"]]}}`, `{"batch":[["a"]`, `{"batch":[["a",]]}`, "{\"batch\":[[\"\x00\"]]}", `{"batch":nul}`} {
		var req Request
		if err := decodeRequest([]byte(in), &req); err == nil {
			t.Errorf("%s: no error, got %+v", in, req)
		}
	}
}

// FuzzRequestJSON holds request decoding to encoding/json's: the same
// request, or an error where it gives one.
func FuzzRequestJSON(f *testing.F) {
	for _, s := range []string{`{"batch":[["route","add","10.0.0.0/8"]]}`, `{"batch":null}`, `{"args":["x"]}`, `{"batch":[["a"]]} `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var got, want Request
		gerr := decodeRequest([]byte(in), &got)
		werr := json.Unmarshal([]byte(in), &want)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, encoding/json's %v", in, gerr, werr)
		}
		if gerr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %+v, want %+v", in, got, want)
		}
	})
}
