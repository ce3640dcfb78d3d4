package binread

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestReader(t *testing.T) {
	b := []byte{7}
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -5)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	d := Reader{B: b}
	if d.Byte() != 7 || d.Uvarint(1000) != 300 || d.Varint() != -5 || d.String(10) != "abc" || d.Err != nil || len(d.B) != 0 {
		t.Fatalf("read back wrong: %+v", d)
	}
	d = Reader{B: binary.AppendUvarint(nil, 300)}
	if d.Uvarint(299) != 0 || d.Err == nil {
		t.Error("out of range accepted")
	}
	d = Reader{B: []byte{5, 'a'}}
	if d.String(10) != "" || !errors.Is(d.Err, ErrShort) || d.Byte() != 0 {
		t.Errorf("short string: %v", d.Err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Reader{B: b}
		d.Byte()
		d.Varint()
		s := d.String(1 << 20)
		if d.Err == nil && len(s) > len(b) {
			t.Fatal("read more than the input")
		}
	})
}
