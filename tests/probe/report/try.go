package report

// TryResult is the outcome of one `probe try` attempt: Errno is "OK", an
// errno name such as "EPERM", "SIGSYS"/"SIGSEGV"/"KILLED:<signal>" when the
// attempt ran in a child process that died by a signal, or "ERROR: ..."
// when the probe itself failed. Fields carries details some tries report
// (caps: the capability sets and NoNewPrivs; chmod-suid: the mode and the
// credentials of the exec'd copy).
type TryResult struct {
	Name   string            `json:"name"`
	Errno  string            `json:"errno"`
	Fields map[string]string `json:"fields,omitempty"`
}

// TryReport is the output of `probe try NAME...`; it decodes the same JSON
// as Tries, with the fields.
type TryReport struct {
	Results []TryResult `json:"results"`
}

// Errno returns the result for name, or "" when it is absent.
func (t TryReport) Errno(name string) string {
	if r := t.Get(name); r != nil {
		return r.Errno
	}
	return ""
}

// Get returns the result for name, or nil when it is absent.
func (t TryReport) Get(name string) *TryResult {
	for i := range t.Results {
		if t.Results[i].Name == name {
			return &t.Results[i]
		}
	}
	return nil
}
