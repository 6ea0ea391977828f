module github.com/zviz/zviz

go 1.26.8

require (
	github.com/opencontainers/runtime-spec v1.3.0
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)
