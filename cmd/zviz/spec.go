package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zviz/zviz/internal/container"
	"github.com/zviz/zviz/internal/spec"
)

func init() {
	register("spec", "write a config.json that zviz runs", cmdSpec)
	register("features", "print the runtime-spec features document", cmdFeatures)
}

func cmdSpec(g *globals, args []string) int {
	fs := newFlagSet("spec")
	rootless := fs.Bool("rootless", false, "a config for an unprivileged user")
	bundle := fs.String("bundle", ".", "where to write config.json")
	fs.StringVar(bundle, "b", ".", "where to write config.json")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("spec", pos, 0, 0, "[--rootless] [--bundle DIR]")
	}
	if err != nil {
		return g.fail(err)
	}
	path := filepath.Join(*bundle, "config.json")
	if _, err := os.Lstat(path); err == nil {
		return g.fail(fmt.Errorf("spec: %s already exists; remove it first", path))
	} else if !errors.Is(err, os.ErrNotExist) {
		return g.fail(fmt.Errorf("spec: %s: %w", path, err))
	}
	s := spec.Example(*rootless, uint32(os.Geteuid()), uint32(os.Getegid()))
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return g.fail(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return g.fail(fmt.Errorf("spec: write %s: %w", path, err))
	}
	return 0
}

func cmdFeatures(g *globals, args []string) int {
	pos, err := newFlagSet("features").parse(args, true)
	if err == nil {
		err = needArgs("features", pos, 0, 0, "")
	}
	if err != nil {
		return g.fail(err)
	}
	b, _ := json.MarshalIndent(container.Features(version), "", "    ")
	fmt.Printf("%s\n", b)
	return 0
}
