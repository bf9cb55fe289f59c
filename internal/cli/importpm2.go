package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/pm2dump"
)

func importCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "import <manager>",
		GroupID: "apps",
		Short:   "Start in tend the apps another process manager runs (tend import pm2)",
		// Any arguments, so that a wrong one reaches RunE and is answered
		// here rather than as an unknown command of tend's.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("tend imports from pm2 (tend import pm2), not from %q", args[0])
			}
			return usageErr("say what to import from: tend import pm2")
		},
	}
	cmd.AddCommand(importPM2Cmd(e))
	return cmd
}

// jlistTimeout bounds `pm2 jlist`: it answers in well under a second from
// a running PM2; a hung one should not hang the import.
const jlistTimeout = 30 * time.Second

func importPM2Cmd(e *env) *cobra.Command {
	var file, saveAs string
	var running, dryRun, force bool
	cmd := &cobra.Command{
		Use:   "pm2",
		Short: "Start PM2's saved apps in tend, with their settings",
		Long: `Read PM2's saved process list and start the same apps in tend: name,
script, args, cwd, interpreter and its args, instances, exec_mode, the
variables the user gave (env), watch, restarts, timeouts, logs...

  tend import pm2                    PM2's dump: $PM2_HOME/dump.pm2 (~/.pm2/dump.pm2)
  tend import pm2 --file PATH        another dump (pm2 save writes it)
  tend import pm2 --running          what a running PM2 runs (pm2 jlist)
  tend import pm2 --dry-run          print the ecosystem file it would start
  tend import pm2 --save-as tend.yaml   keep that file too

What cannot be carried over is listed, one line per app and key, with why.
Of the environment PM2 recorded (the whole shell's), only the variables
that differ from this shell's are kept: the app gets this shell's
environment, as with tend start. Apps of the same names in tend are an
error, unless --force replaces them. Stop PM2's apps (pm2 kill) before,
or they will compete for their ports.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("tend import pm2 takes no arguments, not %q: a dump is --file PATH", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if running && file != "" {
				return usageErr("give --file or --running, not both")
			}
			data, source, err := readPM2(cmd.Context(), file, running)
			if err != nil {
				return err
			}
			procs, err := pm2dump.Read(data)
			if err != nil {
				return tend.Errorf(tend.EINVALID, "%s: %v", source, err)
			}
			im := pm2dump.Convert(procs, pm2dump.Options{Shell: os.Environ(), PM2Home: pm2Home()})
			for _, n := range im.Notes {
				fmt.Fprintf(e.errOut, "tend: not carried over: %s\n", n)
			}
			if len(im.Apps) == 0 {
				return tend.Errorf(tend.EINVALID, "%s: no app could be imported (see above)", source)
			}
			doc := im.YAML(source)
			if dryRun {
				_, err := e.out.Write(doc)
				return err
			}
			return e.importApps(cmd.Context(), doc, saveAs, force)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "PM2 dump to read (default $PM2_HOME/dump.pm2, or ~/.pm2/dump.pm2)")
	f.BoolVar(&running, "running", false, "ask the running PM2 (pm2 jlist) instead of reading its dump")
	f.BoolVar(&dryRun, "dry-run", false, "print the ecosystem file (tend's keys) instead of starting its apps")
	f.StringVar(&saveAs, "save-as", "", "also write the ecosystem file to this path (tend start or reload it later)")
	f.BoolVarP(&force, "force", "f", false, "replace tend's apps of the same names, and overwrite --save-as's file")
	return cmd
}

// importApps loads doc as an ecosystem file, refuses names tend already
// runs (unless force), writes doc to saveAs, then starts every app at
// once: the daemon starts all of them or none.
func (e *env) importApps(ctx context.Context, doc []byte, saveAs string, force bool) error {
	specs, err := config.Parse(doc, "imported.yaml", config.Options{BaseEnv: os.Environ()})
	if err != nil {
		return tend.Causef(err, tend.EINVALID, "the imported apps do not load (tend import pm2 --dry-run prints them): %v", err)
	}
	if pid := pm2Running(); pid != 0 {
		fmt.Fprintf(e.errOut, "tend: note: PM2 still runs (pid %d, PM2_HOME=%s): its apps and tend's may compete for ports and files; pm2 kill stops it\n", pid, pm2Home())
	}
	c, insts, err := e.instances(ctx)
	if err != nil {
		return err
	}
	_, present := byPresence(specs, insts)
	var clashes []string
	for _, s := range present {
		clashes = append(clashes, s.Name)
	}
	if len(clashes) > 0 && !force {
		return tend.Errorf(tend.ECONFLICT, "tend already has apps of these names: %s; nothing imported: tend delete %s first, or --force to replace them",
			strings.Join(clashes, ", "), strings.Join(clashes, " "))
	}
	if saveAs != "" {
		// 0600: the variables under env may be secrets.
		if err := writeNewFile(saveAs, doc, 0o600, force); err != nil {
			return err
		}
		fmt.Fprintf(e.errOut, "tend: wrote %s\n", saveAs)
	}
	res, err := e.start(ctx, c, tend.StartRequest{Apps: specs, Force: force}, "imported")
	if err != nil {
		return err
	}
	e.printTable(res.Instances)
	return nil
}

// pm2Home is PM2's directory: $PM2_HOME, or ~/.pm2.
func pm2Home() string {
	if h := os.Getenv("PM2_HOME"); h != "" {
		return h
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".pm2")
}

// pm2Running returns the pid of the PM2 daemon of pm2Home, 0 if none
// runs.
func pm2Running() int {
	b, err := os.ReadFile(filepath.Join(pm2Home(), "pm2.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// readPM2 returns PM2's process list and where it came from: the dump
// file, or `pm2 jlist` when running.
func readPM2(ctx context.Context, file string, running bool) ([]byte, string, error) {
	if running {
		return pm2JList(ctx)
	}
	if file == "" {
		file = filepath.Join(pm2Home(), "dump.pm2")
	}
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", tend.Errorf(tend.ENOTFOUND, "no PM2 dump at %s: run pm2 save first, give its path with --file, or use --running to ask a running PM2", file)
	case err != nil:
		return nil, "", tend.Causef(err, tend.EFAILED, "reading the PM2 dump: %v", err)
	}
	return data, file, nil
}

// pm2JList asks a running PM2 for its process list. pm2 would start a
// daemon of its own if none ran, so its socket is looked for first.
func pm2JList(ctx context.Context) ([]byte, string, error) {
	pm2, err := exec.LookPath("pm2")
	if err != nil {
		return nil, "", tend.Errorf(tend.ENOTFOUND, "pm2 is not on PATH: --running asks it (pm2 jlist); give its dump with --file instead")
	}
	home := pm2Home()
	if _, err := os.Stat(filepath.Join(home, "rpc.sock")); err != nil {
		return nil, "", tend.Errorf(tend.ENOTFOUND, "no PM2 runs with PM2_HOME=%s (no rpc.sock there): set PM2_HOME to its directory, or import its dump with --file", home)
	}
	ctx, cancel := context.WithTimeout(ctx, jlistTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, pm2, "jlist")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, "", tend.Causef(err, tend.EFAILED, "pm2 jlist: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	// The list is one line of JSON; PM2 may print notices before it.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return []byte(lines[len(lines)-1]), "pm2 jlist (PM2_HOME=" + home + ")", nil
}
