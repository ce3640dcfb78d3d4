package chunkstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// RotateIndexKey replaces the repository's index key with newKey, in the
// exclusive session sess (docs/adr/0003-index-key-rotation.md): every
// metadata object is sealed again, to newKey and the data recipients,
// under the generation prefix "g-<fingerprint of newKey>/", the chunk-ID
// key is kept (sealed in the config), and the config is written last, the
// one switch. Until then the old key reads the repository as it was; from
// then on only newKey does. The old generation is deleted afterwards.
// hook, if set, is called with "staged" just before the switch and with
// "switched" just after it (the tests stop the process there).
//
// Run with the current key as newKey, it only deletes what an earlier
// rotation interrupted after its switch left of the old generation.
func (r *Repository) RotateIndexKey(ctx context.Context, sess *Session, newKey *crypto.IndexKey, hook func(string)) (Config, error) {
	cfg, err := r.keyChangeConfig(ctx, sess)
	if err != nil {
		return Config{}, err
	}
	if hook == nil {
		hook = func(string) {}
	}
	if newKey.Recipient().String() == cfg.IndexRecipient {
		return cfg, r.removeGeneration(ctx, cfg.RotatedFrom)
	}
	prefix := "g-" + crypto.Fingerprint(newKey.Recipient().String()) + "/"
	if prefix == cfg.MetaPrefix {
		return Config{}, errors.New("rotate: the new key's generation is the current one")
	}
	rcpts := []age.Recipient{newKey.Recipient()}
	treeFP := fingerprints(append([]string{newKey.Recipient().String()}, cfg.DataRecipients...))
	for _, s := range cfg.DataRecipients {
		rc, err := crypto.ParseRecipient(s)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		rcpts = append(rcpts, rc)
	}
	// 1. what an interrupted rotation to the same key staged
	if err := r.removeGeneration(ctx, prefix); err != nil {
		return Config{}, err
	}
	// The lock, sealed to the new key too: if this process dies after the
	// switch, the writers with the new key can read it and find it stale.
	cur := r.rcpt.Load()
	r.rcpt.Store(&recipients{data: cur.data, meta: append(append([]age.Recipient{}, cur.meta...), newKey.Recipient()), list: cur.list,
		dataFP: cur.dataFP, metaFP: fingerprints(append([]string{r.key.Recipient().String(), newKey.Recipient().String()}, cur.list...))})
	if err := sess.lock.Refresh(ctx); err != nil {
		return Config{}, err
	}
	staged := generation(r.base, prefix)
	save := func(dir string, plain []byte) (ID, error) {
		sealed, err := crypto.Seal(nil, plain, rcpts...)
		if err != nil {
			return ID{}, err
		}
		id := Hash(sealed)
		return id, backend.SaveBytes(ctx, staged, dir+id.String(), sealed)
	}
	saveMeta := func(dir string, v any) (ID, error) {
		body, err := json.Marshal(v)
		if err != nil {
			return ID{}, err
		}
		return save(dir, r.zenc.EncodeAll(body, nil))
	}
	// 2. tree packs, 3. index objects
	objs, bad, err := r.IndexObjects(ctx)
	if err != nil {
		return Config{}, err
	}
	if len(bad) > 0 {
		return Config{}, fmt.Errorf("rotate: %s cannot be read; nothing was changed (restore verify)", bad[0].Name)
	}
	trees := map[ID]IndexPack{}
	for _, packs := range objs {
		for i, p := range packs {
			if p.Type != TreeBlob {
				continue
			}
			if np, ok := trees[p.ID]; ok {
				packs[i].ID, packs[i].Size, packs[i].SealedTo = np.ID, np.Size, np.SealedTo
				continue
			}
			name := ObjectName(TreeBlob, p.ID)
			sealed, err := backend.ReadAll(ctx, r.raw, name)
			if err != nil {
				return Config{}, fmt.Errorf("rotate: %w", err)
			}
			plain, err := crypto.Open(sealed, r.key.Identity())
			if err != nil {
				return Config{}, fmt.Errorf("rotate: %s: %w", name, err)
			}
			id, err := save("tree/", plain)
			if err != nil {
				return Config{}, fmt.Errorf("rotate: %w", err)
			}
			st, err := staged.Stat(ctx, "tree/"+id.String())
			if err != nil {
				return Config{}, fmt.Errorf("rotate: %w", err)
			}
			trees[p.ID] = IndexPack{ID: id, Size: st.Size, SealedTo: treeFP}
			packs[i].ID, packs[i].Size, packs[i].SealedTo = id, st.Size, treeFP
		}
		if _, err := saveMeta("index/", indexFile{Packs: packs}); err != nil {
			return Config{}, fmt.Errorf("rotate: %w", err)
		}
	}
	// 4. snapshots, oldest first, parents remapped; drill records as they are
	snaps, badSnaps, err := r.Snapshots(ctx)
	if err != nil {
		return Config{}, err
	}
	if len(badSnaps) > 0 {
		return Config{}, fmt.Errorf("rotate: %s cannot be read; nothing was changed (restore verify)", badSnaps[0].Name)
	}
	ids := map[ID]ID{}
	for _, sn := range snaps {
		c := *sn
		if c.Parent != nil {
			if p, ok := ids[*c.Parent]; ok {
				c.Parent = &p
			}
		}
		id, err := saveMeta("snapshots/", &c)
		if err != nil {
			return Config{}, fmt.Errorf("rotate: %w", err)
		}
		ids[sn.ID()] = id
	}
	drills, err := r.DrillIDs(ctx)
	if err != nil {
		return Config{}, err
	}
	for _, id := range drills {
		d, err := r.LoadDrill(ctx, id)
		if err != nil {
			continue // an unreadable record is left behind, as a prune does
		}
		if _, err := saveMeta(DrillPrefix, d); err != nil {
			return Config{}, fmt.Errorf("rotate: %w", err)
		}
	}
	// 5. the new key's key object and sealed key
	next := cfg
	next.Version, next.IndexRecipient, next.MetaPrefix = RotatedFormatVersion, newKey.Recipient().String(), prefix
	next.RotatedFrom = cfg.MetaPrefix
	if next.RotatedFrom == "" {
		next.RotatedFrom = "/"
	}
	sealedChunk, err := crypto.Seal(nil, r.chunkKey, rcpts...)
	if err != nil {
		return Config{}, err
	}
	next.ChunkIDKey = base64.StdEncoding.EncodeToString(sealedChunk)
	k := keyInfo{Role: "index", Recipient: next.IndexRecipient, Fingerprint: crypto.Fingerprint(next.IndexRecipient)}
	body, _ := json.MarshalIndent(k, "", "  ")
	if err := backend.SaveBytes(ctx, r.base, keysPrefix+"index-"+k.Fingerprint, body); err != nil {
		return Config{}, fmt.Errorf("rotate: %w", err)
	}
	sealedKey, err := sealIndexKey(newKey, next)
	if err == nil {
		err = backend.SaveBytes(ctx, staged, SealedKeyName, sealedKey)
	}
	if err != nil {
		return Config{}, fmt.Errorf("rotate: %w", err)
	}
	if err := sess.lock.Check(); err != nil {
		return Config{}, err
	}
	hook("staged")
	// 6. the switch
	if err := next.validate(); err != nil {
		return Config{}, err
	}
	next.MAC = next.mac(newKey)
	body, _ = json.MarshalIndent(next, "", "  ")
	if err := backend.SaveBytes(ctx, r.base, configName, body); err != nil {
		return Config{}, fmt.Errorf("rotate: write config: %w", err)
	}
	hook("switched")
	// 7. the old generation
	if err := r.removeGeneration(ctx, next.RotatedFrom); err != nil {
		return next, fmt.Errorf("the key is rotated, but the old metadata stays (run the rotation again with the new key as both keys): %w", err)
	}
	if err := r.base.Remove(ctx, keysPrefix+"index-"+crypto.Fingerprint(cfg.IndexRecipient)); err != nil && !errors.Is(err, backend.ErrNotExist) {
		return next, fmt.Errorf("the key is rotated, but the old key's object stays: %w", err)
	}
	return next, nil
}

// removeGeneration deletes the metadata objects under prefix ("/" or ""
// for the repository's root): every object of metaDirs and the sealed
// index key. Content packs, locks and keys are not touched.
func (r *Repository) removeGeneration(ctx context.Context, prefix string) error {
	if prefix == "" {
		return nil
	}
	be := r.base
	if prefix != "/" {
		be = generation(r.base, prefix)
	}
	for _, dir := range metaDirs {
		var names []string
		if err := be.List(ctx, dir, func(fi backend.Info) error { names = append(names, fi.Name); return nil }); err != nil {
			return err
		}
		for _, n := range names {
			if err := be.Remove(ctx, n); err != nil && !errors.Is(err, backend.ErrNotExist) {
				return err
			}
		}
	}
	if err := be.Remove(ctx, SealedKeyName); err != nil && !errors.Is(err, backend.ErrNotExist) {
		return err
	}
	return nil
}
