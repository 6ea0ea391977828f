package container

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want unix.Signal
	}{
		{"KILL", unix.SIGKILL}, {"SIGKILL", unix.SIGKILL}, {"sigkill", unix.SIGKILL}, {"kill", unix.SIGKILL},
		{"9", unix.SIGKILL}, {"TERM", unix.SIGTERM}, {"sigterm", unix.SIGTERM}, {"15", unix.SIGTERM},
		{"SigUsr1", unix.SIGUSR1}, {"HUP", unix.SIGHUP}, {"WINCH", unix.SIGWINCH}, {"1", unix.SIGHUP},
		{"64", unix.Signal(64)}, {"STOP", unix.SIGSTOP}, {"CONT", unix.SIGCONT},
	} {
		got, err := ParseSignal(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "65", "1000", "NOPE", "SIG", "SIGSIGKILL", "KILL ", "9x", "RTMIN+1"} {
		got, err := ParseSignal(bad)
		if err == nil {
			t.Errorf("ParseSignal(%q) = %v, want an error", bad, got)
			continue
		}
		if !strings.Contains(err.Error(), "signal") || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseSignal(%q): %q does not name the input", bad, err)
		}
	}
}

func TestNotIn(t *testing.T) {
	got := notIn([]string{"A", "B", "C"}, []string{"A", "B"}, []string{"B", "C", "A"})
	if strings.Join(got, ",") != "C" {
		t.Errorf("notIn: %v, want [C]", got)
	}
	if got := notIn(nil, []string{"A"}); len(got) != 0 {
		t.Errorf("notIn(nil): %v", got)
	}
}
