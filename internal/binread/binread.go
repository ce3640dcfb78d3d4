// Package binread reads the fields of a binary record: bytes, varints and
// length-prefixed strings, with the first error sticky, so that a decoder
// reads every field and checks once at the end. It never panics and never
// allocates more than the input holds.
package binread

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShort is the error of a record that ends before its fields do.
var ErrShort = errors.New("truncated")

// Reader reads fields from B; after the first failure every read returns
// a zero value and Err keeps that failure.
type Reader struct {
	B   []byte // what is left to read
	Err error  // the first failure
}

// Fail records err unless a failure is recorded already.
func (d *Reader) Fail(err error) {
	if d.Err == nil {
		d.Err = err
	}
}

// Byte reads one byte.
func (d *Reader) Byte() byte {
	if d.Err != nil || len(d.B) == 0 {
		d.Fail(ErrShort)
		return 0
	}
	c := d.B[0]
	d.B = d.B[1:]
	return c
}

// Uvarint reads an unsigned varint and fails if it is above max.
func (d *Reader) Uvarint(max uint64) uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Fail(errors.New("bad varint"))
		return 0
	}
	if v > max {
		d.Fail(fmt.Errorf("value %d out of range", v))
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Varint reads a signed varint.
func (d *Reader) Varint() int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Fail(errors.New("bad varint"))
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Bytes returns the next n bytes, a slice of B (not a copy).
func (d *Reader) Bytes(n uint64) []byte {
	if d.Err != nil || uint64(len(d.B)) < n {
		d.Fail(ErrShort)
		return nil
	}
	p := d.B[:n]
	d.B = d.B[n:]
	return p
}

// String reads a uvarint length of at most max, then that many bytes.
func (d *Reader) String(max uint64) string {
	return string(d.Bytes(d.Uvarint(max)))
}
