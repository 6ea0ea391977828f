// Package testutil helps zviz's integration tests drive the built binary:
// skip by a named missing host feature (Requires), build zviz and the static
// probe once per test binary (BuildZviz, BuildProbe), make throwaway busybox
// bundles (BusyboxBundle), run commands as root or as the unprivileged test
// user (RunAs), and decode the probe's JSON (DecodeJSON).
//
// The host is prepared by hack/setup.sh (packages, the user zviztest with
// subordinate id ranges, /run/user/UID). Binaries and bundles live in
// world-traversable directories so that zviztest can use them when the tests
// run as root. A package using BuildZviz or BuildProbe should call Main from
// its TestMain so the build directory is removed afterwards:
//
//	func TestMain(m *testing.M) { testutil.Main(m) }
package testutil
