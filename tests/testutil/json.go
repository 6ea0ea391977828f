package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// DecodeJSON decodes exactly one JSON value from out (surrounding white
// space allowed) into v, failing the test with the raw output otherwise.
func DecodeJSON(t testing.TB, out []byte, v any) {
	t.Helper()
	if err := decodeOne(out, v); err != nil {
		t.Fatalf("decode JSON: %v\noutput:\n%s", err, out)
	}
}

func decodeOne(out []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("more data after the value at offset %d", dec.InputOffset())
	}
	return nil
}
