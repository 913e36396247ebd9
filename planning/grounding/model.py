"""The grounding network: intent classifier, target scorer and destination scorer.

A word is embedded as the sum of hashed character n-gram vectors (so misrecognised and
unseen words still land near their neighbours), a bidirectional GRU reads the instruction,
and three heads read its states:

* **tags**: each word's role (other / target phrase / destination phrase / anchor phrase);
* **sentence**: the intent, the target's spatial relation (nearest, biggest, left of, ...),
  and the scores of "no such object", "its own container" and "no such container";
* **candidates**: each object is scored by a small MLP from *features*: how well the
  target-tagged words match its kind, category, colour and support phrases (fuzzy word
  similarity, :mod:`~katazuke.planning.grounding.lexicon`), whether the sentence names a
  colour / furniture the object lacks, its distance to the robot and size relative to the
  other candidates, and where it lies relative to the anchor (left, right, next to) as seen
  from the robot; containers likewise from the destination-tagged words.

The network holds no vocabulary: phrase tables come with each batch from the
:class:`~katazuke.planning.grounding.lexicon.Lexicon`, so new kinds only change the
configuration. Shapes: ``B`` instructions, ``T`` words, ``W`` lexicon words, ``P`` phrases,
``N`` objects, ``C`` containers.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from katazuke.planning.grounding.grammar import REL_LIMITS, Intent, Relation, Tag
from katazuke.planning.grounding.lexicon import (CONT_TYPES, N_BUCKETS, OBJ_TYPES, Lexicon,
                                                 char_ngrams)
from katazuke.planning.grounding.scene import GroundingScene

__all__ = ["ModelDims", "GroundingNet", "SceneTensors", "scene_tensors", "make_batch",
           "lexicon_tensors", "N_INTENTS", "N_RELATIONS", "N_TAGS"]

N_INTENTS = len(Intent)
N_RELATIONS = len(Relation)
N_TAGS = len(Tag)
_K = len(OBJ_TYPES)


@dataclasses.dataclass(frozen=True)
class ModelDims:
    """Sizes of :class:`GroundingNet`."""

    embed: int = 48
    hidden: int = 48
    mlp: int = 32


@dataclasses.dataclass
class SceneTensors:
    """Per-scene inputs: phrase membership and geometry (numpy, one scene)."""

    member: np.ndarray          # (N, K, M) int64 phrase ids per object and type, -1 padded
    dist: np.ndarray            # (N,) robot distance, m
    logvol: np.ndarray          # (N,) log box volume
    side: np.ndarray            # (N, N) signed side of i w.r.t. j, m
    pdist: np.ndarray           # (N, N) xy distance, m
    known: np.ndarray           # (N, 2) float: the map knows the kind, the colour

    @property
    def n(self) -> int:
        return len(self.dist)


def scene_tensors(lex: Lexicon, scene: GroundingScene) -> SceneTensors:
    """The :class:`SceneTensors` of a scene."""
    return SceneTensors(lex.membership_ids(lex.object_membership(scene)), scene.robot_distances().astype(np.float32),
                        np.log(np.array([o.volume for o in scene.objects],
                                        dtype=np.float32)).reshape(-1),
                        scene.side_of().astype(np.float32),
                        scene.pair_distances().astype(np.float32),
                        np.array([[bool(o.kind), bool(o.colour)] for o in scene.objects],
                                 dtype=np.float32).reshape(-1, 2))


def make_batch(lex: Lexicon, words: Sequence[Sequence[str]], scenes: Sequence[SceneTensors],
               choices: Sequence[Sequence[int]] | None = None) -> dict[str, torch.Tensor]:
    """Pad instructions and their scenes into one batch.

    Args:
        lex: the lexicon.
        words: ``B`` word lists (normalised).
        scenes: the scene of each instruction.
        choices: per instruction, the object indices a question offered (in its order);
            then only they are candidates. Empty or None: every object.

    Returns:
        Tensors: ``grams (B, T, G)``, ``grams_mask``, ``word_mask (B, T)``, ``sim (B, T, W)``,
        ``member (B, N, K, M)`` (phrase ids, -1 padded), ``cand_mask (B, N)``, ``obj_mask (B, N)`` (real objects), ``order (B, N)`` (1-based position in
        the question, 0 = not offered), ``n_offered (B,)``, ``dist``, ``logvol (B, N)``,
        ``side``, ``pdist (B, N, N)``, ``known (B, N, 2)`` (kind, colour known).
    """
    B = len(words)
    T = max(1, max(len(w) for w in words))
    N = max(1, max(s.n for s in scenes))
    G = 16
    grams = np.zeros((B, T, G), dtype=np.int64)
    gmask = np.zeros((B, T, G), dtype=bool)
    wmask = np.zeros((B, T), dtype=bool)
    sim = np.zeros((B, T, len(lex.words)), dtype=np.float32)
    M = max(s.member.shape[2] if s.n else 1 for s in scenes)
    member = np.full((B, N, _K, M), -1, dtype=np.int64)
    cand = np.zeros((B, N), dtype=bool)
    objm = np.zeros((B, N), dtype=bool)
    order = np.zeros((B, N), dtype=np.int64)
    n_off = np.zeros(B, dtype=np.int64)
    dist = np.zeros((B, N), dtype=np.float32)
    logvol = np.zeros((B, N), dtype=np.float32)
    side = np.zeros((B, N, N), dtype=np.float32)
    pdist = np.full((B, N, N), 10.0, dtype=np.float32)
    known = np.zeros((B, N, 2), dtype=np.float32)
    for b, (ws, s) in enumerate(zip(words, scenes)):
        for t, w in enumerate(ws):
            g = char_ngrams(w)
            grams[b, t, :len(g)] = g
            gmask[b, t, :len(g)] = True
            wmask[b, t] = True
            sim[b, t] = lex.similarity_row(w)
        n = s.n
        objm[b, :n] = True
        if n:
            member[b, :n, :, :s.member.shape[2]] = s.member
        dist[b, :n], logvol[b, :n] = s.dist, s.logvol
        side[b, :n, :n], pdist[b, :n, :n] = s.side, s.pdist
        known[b, :n] = s.known
        ch = list(choices[b]) if choices is not None and choices[b] else []
        if ch:
            for k, i in enumerate(ch):
                cand[b, i] = True
                order[b, i] = k + 1
            n_off[b] = len(ch)
        else:
            cand[b, :n] = True
    t = torch.from_numpy
    return {"grams": t(grams), "grams_mask": t(gmask), "word_mask": t(wmask), "sim": t(sim),
            "member": t(member), "cand_mask": t(cand), "obj_mask": t(objm), "order": t(order), "n_offered": t(n_off),
            "dist": t(dist), "logvol": t(logvol), "side": t(side), "pdist": t(pdist),
            "known": t(known)}


def _masked_softmax(x: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    x = x.masked_fill(~mask, -1e9)
    return torch.softmax(x, dim=dim) * mask


class GroundingNet(nn.Module):
    """See the module docstring.

    Args:
        dims: layer sizes.
    """

    #: per-candidate feature count (see :meth:`_candidate_features`)
    N_FEATURES = _K + 3 + 2 + 2 + 7 + 3 + 1 + 1 + 2
    N_DEST_FEATURES = len(CONT_TYPES) + 2

    def __init__(self, dims: ModelDims = ModelDims()) -> None:
        super().__init__()
        self.dims = dims
        self.word_dropout = 0.25
        E, H = dims.embed, dims.hidden
        self.embed = nn.Embedding(N_BUCKETS, E)
        nn.init.normal_(self.embed.weight, std=0.1)
        # + per word, its best similarity to the lexicon's nouns, colours, furniture and
        # container words: the robot's vocabulary tells the tagger what may name a thing
        self.gru = nn.GRU(E + 4, H, batch_first=True, bidirectional=True)
        self.tag_head = nn.Linear(2 * H, N_TAGS)
        self.intent_head = nn.Linear(4 * H, N_INTENTS)
        self.relation_head = nn.Linear(4 * H, N_RELATIONS)
        self.sentence_scalars = nn.Linear(4 * H, 3)       # null target, own dest, null dest
        self.stage1 = nn.Linear(_K, 1)
        self.anchor = nn.Linear(_K, 1)
        self.null_target = nn.Linear(3, 1)
        self.candidate = nn.Sequential(nn.Linear(self.N_FEATURES, dims.mlp), nn.ReLU(),
                                       nn.Linear(dims.mlp, dims.mlp), nn.ReLU(),
                                       nn.Linear(dims.mlp, 1))
        self.dest = nn.Sequential(nn.Linear(self.N_DEST_FEATURES, 16), nn.ReLU(),
                                  nn.Linear(16, 1))
        self.dest_scalars = nn.Linear(2, 2)

    # ------------------------------------------------------------------ pieces
    def encode(self, batch: dict[str, torch.Tensor], lex: dict[str, torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Word states ``(B, T, 2H)`` and the sentence vector ``(B, 4H)``."""
        e = (self.embed(batch["grams"]) * batch["grams_mask"].unsqueeze(-1)).sum(2)
        if self.training and self.word_dropout > 0:
            # hide some words' spelling (their lexicon types stay): the tagger must read a
            # phrase from the vocabulary and the context, as for synonyms it never saw
            keep = torch.rand(e.shape[:2]) >= self.word_dropout
            e = e * keep.unsqueeze(-1)
        wt = lex["word_types"]                                          # (W, 4)
        types = (batch["sim"].unsqueeze(-1) * wt).amax(2)               # (B, T, 4)
        h, _ = self.gru(torch.cat([e, types], -1))
        m = batch["word_mask"].unsqueeze(-1)
        n = m.sum(1).clamp(min=1)
        mean = (h * m).sum(1) / n
        mx = h.masked_fill(~m, -1e4).amax(1) * (m.sum(1) > 0)     # no words: zeros
        return h, torch.cat([mean, mx], dim=-1)

    @staticmethod
    def phrase_scores(weights: torch.Tensor, sim: torch.Tensor, phrase_words: torch.Tensor,
                      phrase_mask: torch.Tensor) -> torch.Tensor:
        """``(B, P)``: mean over a phrase's words of the best weighted similarity of any
        word of the instruction (weights ``(B, T)`` in [0, 1])."""
        best = (weights.unsqueeze(-1) * sim).amax(1)                  # (B, W)
        g = best[:, phrase_words] * phrase_mask                       # (B, P, L)
        return g.sum(-1) / phrase_mask.sum(-1).clamp(min=1)

    @staticmethod
    def member_scores(ps: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
        """``(B, N, K)``: the best phrase score among each object's phrases of each type
        (``ps (B, P)``, ``member (B, N, K, M)`` ids with -1 = none -> 0)."""
        B = ps.shape[0]
        padded = torch.cat([ps, ps.new_zeros(B, 1)], 1)               # id -1 -> the zero
        ids = member.clone()
        ids[ids < 0] = ps.shape[1]
        g = torch.gather(padded, 1, ids.reshape(B, -1)).reshape(ids.shape)
        return g.amax(-1)

    def forward(self, batch: dict[str, torch.Tensor], lex: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
        """Scores of one batch.

        Args:
            batch: from :func:`make_batch`.
            lex: lexicon tables (:func:`lexicon_tensors`).

        Returns:
            ``tags (B, T, 4)``, ``intent (B, 9)``, ``relation (B, 8)`` logits; ``target
            (B, N + 1)`` logits (last = no such object; -inf where not a candidate);
            ``dest (B, C + 2)`` logits (C containers, own container, no such container);
            ``anchor (B, N)`` probabilities; ``tag_probs``.
        """
        h, sent = self.encode(batch, lex)
        tags = self.tag_head(h)
        tp = torch.softmax(tags, -1) * batch["word_mask"].unsqueeze(-1)
        w_t, w_d, w_a = tp[..., Tag.TARGET], tp[..., Tag.DEST], tp[..., Tag.ANCHOR]
        pw, pm = lex["phrase_words"], lex["phrase_mask"]
        ps_t = self.phrase_scores(w_t, batch["sim"], pw, pm)
        ps_d = self.phrase_scores(w_d, batch["sim"], pw, pm)
        ps_a = self.phrase_scores(w_a, batch["sim"], pw, pm)
        lex_t = self.member_scores(ps_t, batch["member"])             # (B, N, K)
        lex_a = self.member_scores(ps_a, batch["member"])
        mention = torch.stack([(ps_t * lex[k]).amax(1) for k in
                               ("noun_mask", "colour_mask", "furniture_mask")], -1)  # (B, 3)
        cand = batch["cand_mask"]
        rel = torch.softmax(self.relation_head(sent), -1)
        feats = self._candidate_features(batch, lex_t, lex_a, mention, rel, ps_t, lex)
        score = self.candidate(feats).squeeze(-1).masked_fill(~cand, -1e9)
        scal = self.sentence_scalars(sent)
        # "no such object" from the words' match to the map only (not from the sentence
        # vector, which would learn the training split's unknown nouns by heart)
        null_t = self.null_target(torch.stack(
            [lex_t[..., :3].amax(-1).masked_fill(~cand, 0).amax(1), mention[:, 0],
             (batch["n_offered"] > 0).float()], -1))
        null_t = null_t.masked_fill((batch["n_offered"] > 0).unsqueeze(-1), -1e9)
        # destinations
        cm = lex["container_member"].float()                           # (C, P, 2)
        dfeat = (ps_d[:, None, :, None] * cm[None]).amax(2)             # (B, C, 2)
        d_cw = (ps_d * lex["container_word_mask"]).amax(1)              # (B,)
        d_col = (ps_d * lex["colour_mask"]).amax(1)
        C = cm.shape[0]
        dfeat = torch.cat([dfeat, d_cw[:, None, None].expand(-1, C, 1),
                           d_col[:, None, None].expand(-1, C, 1)], -1)
        dscore = self.dest(dfeat).squeeze(-1)
        dsc = self.dest_scalars(torch.stack([d_col, d_cw], -1)) + scal[:, 1:3]
        return {"tags": tags, "tag_probs": tp, "intent": self.intent_head(sent),
                "relation": self.relation_head(sent),
                "target": torch.cat([score, null_t], -1),
                "dest": torch.cat([dscore, dsc], -1),
                "anchor": self._anchor_probs(lex_a, batch)}

    def _anchor_probs(self, lex_a: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return _masked_softmax(self.anchor(lex_a).squeeze(-1) * 4.0, batch["obj_mask"])

    def _candidate_features(self, batch, lex_t, lex_a, mention, rel, ps_t, lex) -> torch.Tensor:
        cand = batch["cand_mask"]
        B, N, _ = lex_t.shape
        # stage 1: which candidates the words fit, to compare distance and size among them
        q = _masked_softmax(self.stage1(lex_t).squeeze(-1) * 4.0, cand)
        def z(x):
            mu = (q * x).sum(1, keepdim=True)
            sd = ((q * (x - mu) ** 2).sum(1, keepdim=True)).sqrt()
            return (x - mu) / (sd + 0.1)
        zd, zv = z(batch["dist"]), z(batch["logvol"])
        a = self._anchor_probs(lex_a, batch)                           # (B, N)
        side, pd = batch["side"], batch["pdist"]
        lim = REL_LIMITS
        close = torch.exp(-pd / 0.5)
        left = torch.sigmoid((side - lim["side_m"]) / 0.03) * close
        right = torch.sigmoid((-side - lim["side_m"]) / 0.03) * close
        L = (left * a[:, None, :]).sum(-1)
        R = (right * a[:, None, :]).sum(-1)
        near = (torch.exp(-pd / 0.4) * a[:, None, :]).sum(-1)
        r = rel
        prods = torch.stack([r[:, Relation.NEAREST, None] * -zd, r[:, Relation.FARTHEST, None] * zd,
                             r[:, Relation.BIGGEST, None] * zv, r[:, Relation.SMALLEST, None] * -zv,
                             r[:, Relation.LEFT_OF, None] * L, r[:, Relation.RIGHT_OF, None] * R,
                             r[:, Relation.NEAR, None] * near], -1)
        m = mention[:, None, :].expand(B, N, 3)
        mismatch = torch.stack([m[..., 1] - lex_t[..., 3], m[..., 2] - lex_t[..., 4]], -1)
        # ordinals of a choice answer: "the first one", "the last one"
        order = batch["order"]
        op, om = lex["order_phrases"], lex["order_mask"]     # (4, L) ids of 1st, 2nd, 3rd, last
        o_score = (ps_t[:, op] * om).amax(-1)                           # (B, 4)
        last = (order == batch["n_offered"].unsqueeze(-1)) & (order > 0)
        ordf = torch.zeros(B, N)
        for k in range(3):
            ordf = ordf + (order == k + 1).float() * o_score[:, k:k + 1]
        ordf = ordf + last.float() * o_score[:, 3:4]
        return torch.cat([lex_t, m, mismatch, torch.stack([zd, zv], -1), prods,
                          torch.stack([L, R, near], -1), a.unsqueeze(-1) * 1.0,
                          ordf.unsqueeze(-1), batch["known"]], -1)


def lexicon_tensors(lex: Lexicon) -> dict[str, torch.Tensor]:
    """The lexicon's tables as tensors for :meth:`GroundingNet.forward`."""
    from katazuke.planning.grounding.scene import SceneContainer

    conts = [SceneContainer(c.id, c.colour, tuple(c.categories), (0.0, 0.0, 0.0))
             for c in lex.config.containers]
    lists = [lex.order_phrases.get(k, []) for k in (1, 2, 3, -1)]
    L = max(1, max(len(x) for x in lists))
    order = np.zeros((4, L), dtype=np.int64)
    order_mask = np.zeros((4, L), dtype=np.float32)
    for i, x in enumerate(lists):
        order[i, :len(x)] = x
        order_mask[i, :len(x)] = 1.0
    word_types = np.zeros((len(lex.words), 4), dtype=np.float32)
    for t, mask in enumerate((lex.noun_mask, lex.colour_mask, lex.furniture_mask,
                              lex.container_word_mask)):
        for p in np.flatnonzero(mask):
            for w in lex.phrase_words[p][lex.phrase_mask[p]]:
                word_types[w, t] = 1.0
    return {"phrase_words": torch.from_numpy(lex.phrase_words),
            "phrase_mask": torch.from_numpy(lex.phrase_mask).float(),
            "noun_mask": torch.from_numpy(lex.noun_mask).float(),
            "colour_mask": torch.from_numpy(lex.colour_mask).float(),
            "furniture_mask": torch.from_numpy(lex.furniture_mask).float(),
            "container_word_mask": torch.from_numpy(lex.container_word_mask).float(),
            "container_member": torch.from_numpy(lex.container_membership(conts)),
            "order_phrases": torch.from_numpy(order), "order_mask": torch.from_numpy(order_mask),
            "word_types": torch.from_numpy(word_types)}

