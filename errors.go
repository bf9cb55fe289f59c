package tend

import (
	"errors"
	"fmt"
)

// Code is the kind of an Error, for programs: HTTPStatus and ExitCode map
// it to the control API's statuses and the CLI's exit codes.
type Code string

// The error codes.
const (
	ENOTFOUND Code = "not_found" // a target, script or interpreter does not exist
	EINVALID  Code = "invalid"   // bad input: flags, config, arguments
	ECONFLICT Code = "conflict"  // name in use, port in use
	EFAILED   Code = "failed"    // the operation ran and failed (reload aborted, app did not start)
	EINTERNAL Code = "internal"  // a bug or an unexpected OS error
)

// Error is an error meant for the user: a code for programs and a message
// that names the thing and how to fix it.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	cause   error  // what it came from, for errors.Is and errors.As; never sent
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the error e came from, if any.
func (e *Error) Unwrap() error { return e.cause }

// Errorf returns an *Error with the given code.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Causef is Errorf for an error that rewords cause for the user: errors.Is
// and errors.As still find cause (an errno a Node worker must get, say).
func Causef(cause error, code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), cause: cause}
}

// ErrorCode returns the code of err, EINTERNAL when it carries none.
func ErrorCode(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// HTTPStatus maps an error code to the control API's HTTP status.
func HTTPStatus(code Code) int {
	switch code {
	case ENOTFOUND:
		return 404
	case EINVALID:
		return 400
	case ECONFLICT:
		return 409
	case EFAILED:
		return 422
	default:
		return 500
	}
}

// ExitCode maps an error to the CLI's exit status: 1 for failures of the
// operation, 2 for bad input, 3 for things that were not found.
func ExitCode(err error) int {
	switch ErrorCode(err) {
	case "":
		return 0
	case EINVALID:
		return 2
	case ENOTFOUND:
		return 3
	default:
		return 1
	}
}
