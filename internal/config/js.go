package config

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tendhq/tend"
)

// nodeCommand is the node executable; a variable so that tests can hide it.
var nodeCommand = "node"

// jsTimeout bounds the evaluation of a .js file: a file that starts a server
// or waits on the network would otherwise hang the CLI forever.
const jsTimeout = 10 * time.Second

// evalScript loads the file named by argv[1], with require (CommonJS) or
// import (ES modules, and CommonJS packages that node refuses to require),
// takes module.exports or the default export, and prints it as indented
// JSON, so that positions in errors point at readable lines.
const evalScript = `
const path = require('path');
const url = require('url');
const file = path.resolve(process.argv[1]);
(async () => {
  let m;
  if (file.endsWith('.mjs')) {
    m = await import(url.pathToFileURL(file).href);
  } else {
    try {
      m = require(file);
    } catch (e) {
      if (e.code !== 'ERR_REQUIRE_ESM' && e.code !== 'ERR_REQUIRE_ASYNC_MODULE') throw e;
      m = await import(url.pathToFileURL(file).href);
    }
  }
  if (m && (m[Symbol.toStringTag] === 'Module' || m.__esModule) && 'default' in m) m = m.default;
  m = await m;
  const out = JSON.stringify(m === undefined ? null : m, null, 2);
  process.stdout.write(out + '\n', () => process.exit(0));
})().catch((e) => {
  process.stderr.write(String((e && e.stack) || e) + '\n', () => process.exit(1));
});
`

// evalJS runs node to turn a JavaScript ecosystem file into JSON. It runs in
// opt.Cwd (or the file's directory), where the file's own process.cwd()
// lookups expect to be, with opt.BaseEnv as its environment.
func evalJS(path string, opt Options) ([]byte, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, tend.Errorf(tend.ENOTFOUND, "config file %s does not exist", path)
		}
		return nil, tend.Errorf(tend.ENOTFOUND, "cannot read config file %s: %v", path, unwrapPath(err))
	}
	node, err := exec.LookPath(nodeCommand)
	if err != nil {
		return nil, tend.Errorf(tend.EINVALID, "%s: node is needed to read .js ecosystem files and was not found on PATH; install node, or write the file as YAML or JSON", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, tend.Errorf(tend.EINVALID, "%s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", evalScript, "--", abs)
	cmd.Dir = opt.Cwd
	if cmd.Dir == "" {
		cmd.Dir = filepath.Dir(abs)
	}
	if opt.BaseEnv != nil {
		cmd.Env = opt.BaseEnv
	}
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, tend.Errorf(tend.EINVALID, "%s: node did not finish evaluating the file within %v", path, jsTimeout)
		}
		return nil, tend.Errorf(tend.EINVALID, "%s: node could not evaluate the file: %s", path, firstLines(stderr.String(), err))
	}
	return stdout.Bytes(), nil
}

// firstLines keeps the message of node's error output, which for a syntax
// error includes the offending source line, and the innermost stack frame,
// not node's internal frames below it.
func firstLines(s string, err error) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return err.Error()
	}
	var keep []string
	frames := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "at ") {
			if frames++; frames > 1 {
				continue
			}
		}
		keep = append(keep, l)
	}
	// A thrown non-Error or a long message can be big; a dozen lines is
	// enough to act on.
	if len(keep) > 12 {
		keep = keep[:12]
	}
	return strings.Join(keep, "\n")
}
