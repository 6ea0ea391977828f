package userns

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
)

// Default locations of the subordinate id files (subuid(5), subgid(5)).
const (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// SubIDs returns the subordinate id ranges that the file at path (in the
// "owner:start:count" format of subuid(5)) grants to the user, in file
// order. A line is the user's when its owner field is the user's name or
// its numeric id, as newuidmap(1) accepts both; user may be "" to match by
// id only. A missing file is not an error: it returns nil, nil. Blank lines
// and lines starting with '#' are skipped; a malformed line belonging to the
// user is an error naming path:line, and malformed lines of other users are
// ignored, as shadow-utils does.
func SubIDs(path, user string, id uint32) ([]Range, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read subordinate ids: %w", err)
	}
	idStr := strconv.FormatUint(uint64(id), 10)
	var ranges []Range
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		owner, rest, _ := bytes.Cut(line, []byte{':'})
		if o := string(owner); o != idStr && (user == "" || o != user) {
			continue
		}
		r, err := parseRange(rest)
		if err != nil {
			return nil, fmt.Errorf("parse %s:%d: line %q: %w", path, n, line, err)
		}
		ranges = append(ranges, r)
	}
	return ranges, nil
}

// parseRange parses the "start:count" part of a subuid(5) line.
func parseRange(s []byte) (Range, error) {
	start, count, ok := bytes.Cut(s, []byte{':'})
	if !ok || bytes.IndexByte(count, ':') >= 0 {
		return Range{}, errors.New("want owner:start:count")
	}
	st, err := parseUint32("start", start)
	if err != nil {
		return Range{}, err
	}
	c, err := parseUint32("count", count)
	if err != nil {
		return Range{}, err
	}
	if c == 0 {
		return Range{}, errors.New("count must not be zero")
	}
	if st+c > math.MaxUint32 {
		return Range{}, fmt.Errorf("range %d+%d overflows 32-bit ids", st, c)
	}
	return Range{Start: uint32(st), Count: uint32(c)}, nil
}

// parseUint32 parses a decimal id field, naming it in the error without
// strconv's "strconv.ParseUint: parsing" noise.
func parseUint32(name string, b []byte) (uint64, error) {
	v, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok {
			err = ne.Err
		}
		return 0, fmt.Errorf("%s %q: %w", name, b, err)
	}
	return v, nil
}
