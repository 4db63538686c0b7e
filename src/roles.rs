//! The role of a tensor in a transformer, read from its parameter name.
//!
//! A role has three parts (METHOD.md section 3):
//!
//! * a [`Kind`]: what the matrix does (`q`, `k`, `v`, `qkv`, `o`, `ffn_in`, ..., `embedding`,
//!   `norm`, `bias`, `other`);
//! * a [`Class`]: how NPM-k reads it (`selection`, `value`, `transmission`, `excluded`, `other`);
//! * the layer index, when the name has one.
//!
//! Names are matched against explicit per-family tables ([`Family`]): a layer container
//! (`layers.N.`, `layer.N.`, `h.N.`, `blocks.N.`) followed by a module path that the family's
//! table lists, e.g. `self_attn.q_proj`. Whatever comes before the container is ignored, so
//! prefixes such as `model.`, `transformer.`, `bert.` or `gpt_neox.` need no special case.
//!
//! Rules, in order:
//!
//! 1. Buffers (`inv_freq`, `masked_bias`, `position_ids`, the causal mask stored as
//!    `attn.bias` / `attention.bias`) are [`Kind::Buffer`].
//! 2. A `bias` parameter is [`Kind::Bias`]; `LayerNorm.gamma`/`beta` and modules whose name
//!    contains `norm` (or is `ln_1`, `ln_2`, `ln_f`) are [`Kind::Norm`].
//! 3. Embeddings (`embed_tokens`, `embed_in`, `wte`, `wpe`, `word_embeddings`, ...) and LM heads
//!    (`lm_head`, `embed_out`, OLMo-1's top-level `ff_out`, BERT's `cls.predictions.decoder`).
//! 4. The family tables, for `weight` parameters inside a layer.
//! 5. Anything else is [`Kind::Other`].
//!
//! Embeddings, LM heads, norms, biases and buffers are [`Class::Excluded`], and so is every tensor
//! that is not 2-D, whatever its name: the unit of fit is one weight matrix. Unknown 2-D weights
//! are [`Class::Other`]: they are fitted and reported, and pooled on their own, but they do not
//! join the `all` pool, which holds the selection, value and transmission matrices only, so that
//! `all` means the same thing for every model.
//!
//! Tied weights (an LM head sharing the embedding) are stored once in a safetensors file and so
//! are seen, and counted, once.
//!
//! This module needs neither `std` nor `alloc`.

/// What a tensor does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "snake_case"))]
pub enum Kind {
    /// Attention query projection.
    Q,
    /// Attention key projection.
    K,
    /// Attention value projection.
    V,
    /// Fused query-key-value projection (GPT-NeoX, GPT-2, OLMo-1, Phi-3).
    Qkv,
    /// Attention output projection.
    O,
    /// Feed-forward input projection (fused gate and up in OLMo-1's SwiGLU).
    FfnIn,
    /// Gated feed-forward: the gate projection.
    FfnGate,
    /// Gated feed-forward: the up projection.
    FfnUp,
    /// Gated feed-forward: gate and up fused in one matrix (Phi-3).
    FfnGateUp,
    /// Feed-forward output projection.
    FfnOut,
    /// Token, position or token-type embedding.
    Embedding,
    /// Output (unembedding) matrix.
    LmHead,
    /// Normalization scale or shift.
    Norm,
    /// Bias vector.
    Bias,
    /// Non-trainable buffer stored in the checkpoint (rotary frequencies, masks, ids).
    Buffer,
    /// A name no table knows.
    Other,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 16] = [
        Kind::Q,
        Kind::K,
        Kind::V,
        Kind::Qkv,
        Kind::O,
        Kind::FfnIn,
        Kind::FfnGate,
        Kind::FfnUp,
        Kind::FfnGateUp,
        Kind::FfnOut,
        Kind::Embedding,
        Kind::LmHead,
        Kind::Norm,
        Kind::Bias,
        Kind::Buffer,
        Kind::Other,
    ];

    /// The name used in reports (`"ffn_in"`, `"lm_head"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Q => "q",
            Kind::K => "k",
            Kind::V => "v",
            Kind::Qkv => "qkv",
            Kind::O => "o",
            Kind::FfnIn => "ffn_in",
            Kind::FfnGate => "ffn_gate",
            Kind::FfnUp => "ffn_up",
            Kind::FfnGateUp => "ffn_gate_up",
            Kind::FfnOut => "ffn_out",
            Kind::Embedding => "embedding",
            Kind::LmHead => "lm_head",
            Kind::Norm => "norm",
            Kind::Bias => "bias",
            Kind::Buffer => "buffer",
            Kind::Other => "other",
        }
    }

    /// The class a 2-D tensor of this kind belongs to.
    pub const fn class(self) -> Class {
        match self {
            Kind::Q | Kind::K | Kind::Qkv => Class::Selection,
            Kind::V => Class::Value,
            Kind::O
            | Kind::FfnIn
            | Kind::FfnGate
            | Kind::FfnUp
            | Kind::FfnGateUp
            | Kind::FfnOut => Class::Transmission,
            Kind::Embedding | Kind::LmHead | Kind::Norm | Kind::Bias | Kind::Buffer => {
                Class::Excluded
            }
            Kind::Other => Class::Other,
        }
    }
}

/// How NPM-k reads a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "snake_case"))]
pub enum Class {
    /// Query and key matrices, fused qkv included: they decide where attention goes.
    Selection,
    /// Value matrices.
    Value,
    /// Attention output and feed-forward matrices: they carry the signal on.
    Transmission,
    /// Never pooled: embeddings, LM head, norms, biases, buffers, tensors that are not 2-D.
    Excluded,
    /// 2-D weights no table knows: fitted, pooled on their own, not part of `all`.
    Other,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 5] =
        [Class::Selection, Class::Value, Class::Transmission, Class::Excluded, Class::Other];

    /// The name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Class::Selection => "selection",
            Class::Value => "value",
            Class::Transmission => "transmission",
            Class::Excluded => "excluded",
            Class::Other => "other",
        }
    }

    /// Whether matrices of this class join the `all` pool.
    pub const fn in_all(self) -> bool {
        matches!(self, Class::Selection | Class::Value | Class::Transmission)
    }
}

/// The model family whose table recognised a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "kebab-case"))]
pub enum Family {
    /// GPT-NeoX and Pythia (`gpt_neox.layers.N.`).
    GptNeox,
    /// LLaMA, Mistral, Qwen2/2.5/3, OLMo-2, Phi-3 (`model.layers.N.`).
    Llama,
    /// BERT and its descendants (`encoder.layer.N.`).
    Bert,
    /// GPT-2 (`h.N.`).
    Gpt2,
    /// OLMo-1 native checkpoints (`transformer.blocks.N.`).
    Olmo1,
}

impl Family {
    /// The name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Family::GptNeox => "gpt-neox",
            Family::Llama => "llama",
            Family::Bert => "bert",
            Family::Gpt2 => "gpt2",
            Family::Olmo1 => "olmo1",
        }
    }
}

/// The role of one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Role {
    /// What it does.
    pub kind: Kind,
    /// How it is read; [`Class::Excluded`] for every tensor that is not 2-D.
    pub class: Class,
    /// Layer index, when the name has a layer container.
    pub layer: Option<u32>,
    /// The family table that recognised a matrix name.
    pub family: Option<Family>,
}

impl Role {
    /// Whether the tensor is pooled with its class (selection, value, transmission, other).
    pub fn is_pooled(&self) -> bool {
        self.class != Class::Excluded
    }
}

/// One family's matrices: module path inside a layer, and kind.
struct Table {
    family: Family,
    entries: &'static [(&'static str, Kind)],
}

const TABLES: &[Table] = &[
    Table {
        family: Family::GptNeox,
        entries: &[
            ("attention.query_key_value", Kind::Qkv),
            ("attention.dense", Kind::O),
            ("mlp.dense_h_to_4h", Kind::FfnIn),
            ("mlp.dense_4h_to_h", Kind::FfnOut),
        ],
    },
    Table {
        family: Family::Llama,
        entries: &[
            ("self_attn.q_proj", Kind::Q),
            ("self_attn.k_proj", Kind::K),
            ("self_attn.v_proj", Kind::V),
            ("self_attn.qkv_proj", Kind::Qkv),
            ("self_attn.o_proj", Kind::O),
            ("mlp.gate_proj", Kind::FfnGate),
            ("mlp.up_proj", Kind::FfnUp),
            ("mlp.gate_up_proj", Kind::FfnGateUp),
            ("mlp.down_proj", Kind::FfnOut),
        ],
    },
    Table {
        family: Family::Bert,
        entries: &[
            ("attention.self.query", Kind::Q),
            ("attention.self.key", Kind::K),
            ("attention.self.value", Kind::V),
            ("attention.output.dense", Kind::O),
            ("intermediate.dense", Kind::FfnIn),
            ("output.dense", Kind::FfnOut),
        ],
    },
    Table {
        family: Family::Gpt2,
        entries: &[
            ("attn.c_attn", Kind::Qkv),
            ("attn.c_proj", Kind::O),
            ("mlp.c_fc", Kind::FfnIn),
            ("mlp.c_proj", Kind::FfnOut),
        ],
    },
    Table {
        family: Family::Olmo1,
        entries: &[
            ("att_proj", Kind::Qkv),
            ("attn_out", Kind::O),
            ("ff_proj", Kind::FfnIn),
            ("ff_out", Kind::FfnOut),
        ],
    },
];

/// Segments that hold numbered layers: `layers.3.`, `layer.3.`, `h.3.`, `blocks.3.`.
const LAYER_CONTAINERS: &[&str] = &["layers", "layer", "h", "blocks", "block"];

/// Module names (last segment) of embeddings.
const EMBEDDINGS: &[&str] = &[
    "embed_tokens",
    "embed_in",
    "embed_positions",
    "tok_embeddings",
    "wte",
    "wpe",
    "word_embeddings",
    "position_embeddings",
    "token_type_embeddings",
];

/// Module names (last segment) of LM heads, outside any layer.
const LM_HEADS: &[&str] = &["lm_head", "embed_out"];

/// Parameter names of buffers.
const BUFFERS: &[&str] = &["inv_freq", "masked_bias", "position_ids", "token_type_ids"];

/// The role of tensor `name` with `ndim` dimensions.
///
/// ```
/// use npmk::roles::{classify, Class, Kind};
///
/// let r = classify("model.layers.7.self_attn.k_proj.weight", 2);
/// assert_eq!((r.kind, r.class, r.layer), (Kind::K, Class::Selection, Some(7)));
/// let r = classify("gpt_neox.layers.0.attention.query_key_value.weight", 2);
/// assert_eq!((r.kind, r.class), (Kind::Qkv, Class::Selection));
/// assert_eq!(classify("model.norm.weight", 1).class, Class::Excluded);
/// ```
pub fn classify(name: &str, ndim: usize) -> Role {
    let (kind, layer, family) = kind_of(name);
    let class = if ndim == 2 { kind.class() } else { Class::Excluded };
    Role { kind, class, layer, family }
}

/// Kind, layer and family from the name alone.
fn kind_of(name: &str) -> (Kind, Option<u32>, Option<Family>) {
    let (layer, local) = split_layer(name);
    let (module, param) = match local.rfind('.') {
        Some(dot) => (&local[..dot], &local[dot + 1..]),
        None => ("", local),
    };
    let last_module = module.rsplit('.').next().unwrap_or("");

    // 1. Buffers, including the causal masks GPT-2 and GPT-NeoX store as `attn.bias`.
    let is_attention_module = matches!(module, "attn" | "attention");
    if BUFFERS.contains(&param) || (param == "bias" && is_attention_module) {
        return (Kind::Buffer, layer, None);
    }

    // 2. Biases and norms.
    if param == "bias" {
        return (Kind::Bias, layer, None);
    }
    if is_norm_module(last_module) || matches!(param, "gamma" | "beta") {
        return (Kind::Norm, layer, None);
    }

    // 3. Embeddings and heads (outside layers).
    if layer.is_none() {
        if EMBEDDINGS.contains(&last_module) {
            return (Kind::Embedding, None, None);
        }
        let olmo1_head = last_module == "ff_out" && module.ends_with("transformer.ff_out");
        let bert_head = module.ends_with("predictions.decoder");
        if LM_HEADS.contains(&last_module) || olmo1_head || bert_head {
            return (Kind::LmHead, None, None);
        }
        return (Kind::Other, None, None);
    }

    // 4. The family tables.
    if param == "weight" {
        for table in TABLES {
            if let Some(&(_, kind)) = table.entries.iter().find(|(path, _)| *path == module) {
                return (kind, layer, Some(table.family));
            }
        }
    }
    (Kind::Other, layer, None)
}

/// Whether a module name is a normalization layer.
fn is_norm_module(module: &str) -> bool {
    if matches!(module, "ln_1" | "ln_2" | "ln_f" | "ln") {
        return true;
    }
    // Case-insensitive search for "norm" without allocating.
    module.as_bytes().windows(4).any(|w| w.eq_ignore_ascii_case(b"norm"))
}

/// Splits `prefix.layers.N.rest` into `(Some(N), "rest")`; names without a layer container come
/// back whole.
fn split_layer(name: &str) -> (Option<u32>, &str) {
    let mut rest = name;
    let mut offset = 0;
    while let Some(dot) = rest.find('.') {
        let segment = &rest[..dot];
        let after = &rest[dot + 1..];
        if LAYER_CONTAINERS.contains(&segment) {
            let (number, tail) = match after.find('.') {
                Some(d) => (&after[..d], &after[d + 1..]),
                None => (after, ""),
            };
            let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
            if let (true, Ok(n)) = (digits, number.parse::<u32>()) {
                return (Some(n), tail);
            }
        }
        offset += dot + 1;
        rest = &name[offset..];
    }
    (None, name)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn role(name: &str) -> (Kind, Class, Option<u32>) {
        let r = classify(name, 2);
        (r.kind, r.class, r.layer)
    }

    #[test]
    fn gpt_neox_pythia() {
        use Class::*;
        assert_eq!(
            role("gpt_neox.layers.5.attention.query_key_value.weight"),
            (Kind::Qkv, Selection, Some(5))
        );
        assert_eq!(
            role("gpt_neox.layers.5.attention.dense.weight"),
            (Kind::O, Transmission, Some(5))
        );
        assert_eq!(role("gpt_neox.layers.0.mlp.dense_h_to_4h.weight").0, Kind::FfnIn);
        assert_eq!(role("gpt_neox.layers.0.mlp.dense_4h_to_h.weight").0, Kind::FfnOut);
        assert_eq!(role("gpt_neox.layers.0.attention.bias").0, Kind::Buffer);
        assert_eq!(role("gpt_neox.layers.0.attention.masked_bias").0, Kind::Buffer);
        assert_eq!(role("gpt_neox.layers.0.attention.rotary_emb.inv_freq").0, Kind::Buffer);
        assert_eq!(role("gpt_neox.layers.0.input_layernorm.weight").0, Kind::Norm);
        assert_eq!(role("gpt_neox.embed_in.weight"), (Kind::Embedding, Excluded, None));
        assert_eq!(role("embed_out.weight"), (Kind::LmHead, Excluded, None));
        assert_eq!(role("gpt_neox.final_layer_norm.weight").0, Kind::Norm);
        assert_eq!(
            classify("gpt_neox.layers.3.attention.dense.weight", 2).family,
            Some(Family::GptNeox)
        );
    }

    #[test]
    fn llama_mistral_qwen_olmo2() {
        use Class::*;
        let p = "model.layers.12.";
        assert_eq!(role(&format!("{p}self_attn.q_proj.weight")), (Kind::Q, Selection, Some(12)));
        assert_eq!(role(&format!("{p}self_attn.k_proj.weight")), (Kind::K, Selection, Some(12)));
        assert_eq!(role(&format!("{p}self_attn.v_proj.weight")), (Kind::V, Value, Some(12)));
        assert_eq!(role(&format!("{p}self_attn.o_proj.weight")).0, Kind::O);
        assert_eq!(
            role(&format!("{p}mlp.gate_proj.weight")),
            (Kind::FfnGate, Transmission, Some(12))
        );
        assert_eq!(role(&format!("{p}mlp.up_proj.weight")).0, Kind::FfnUp);
        assert_eq!(role(&format!("{p}mlp.down_proj.weight")).0, Kind::FfnOut);
        assert_eq!(role(&format!("{p}self_attn.q_proj.bias")), (Kind::Bias, Excluded, Some(12)));
        assert_eq!(role(&format!("{p}self_attn.q_norm.weight")).0, Kind::Norm);
        assert_eq!(role(&format!("{p}post_feedforward_layernorm.weight")).0, Kind::Norm);
        assert_eq!(role("model.embed_tokens.weight").0, Kind::Embedding);
        assert_eq!(role("lm_head.weight").0, Kind::LmHead);
        assert_eq!(role("model.norm.weight").0, Kind::Norm);
        assert_eq!(role("model.layers.0.self_attn.qkv_proj.weight").0, Kind::Qkv);
        assert_eq!(role("model.layers.0.mlp.gate_up_proj.weight").0, Kind::FfnGateUp);
    }

    #[test]
    fn bert_with_and_without_prefix() {
        use Class::*;
        for prefix in ["", "bert.", "0.auto_model."] {
            let p = format!("{prefix}encoder.layer.3.");
            let r = |s: &str| role(&format!("{p}{s}"));
            assert_eq!(r("attention.self.query.weight"), (Kind::Q, Selection, Some(3)));
            assert_eq!(r("attention.self.key.weight").0, Kind::K);
            assert_eq!(r("attention.self.value.weight"), (Kind::V, Value, Some(3)));
            assert_eq!(r("attention.output.dense.weight"), (Kind::O, Transmission, Some(3)));
            assert_eq!(r("intermediate.dense.weight").0, Kind::FfnIn);
            assert_eq!(r("output.dense.weight").0, Kind::FfnOut);
            assert_eq!(r("output.LayerNorm.weight").0, Kind::Norm);
            assert_eq!(r("attention.output.LayerNorm.gamma").0, Kind::Norm);
            assert_eq!(r("output.dense.bias").0, Kind::Bias);
        }
        assert_eq!(role("embeddings.word_embeddings.weight").0, Kind::Embedding);
        assert_eq!(role("bert.embeddings.position_embeddings.weight").0, Kind::Embedding);
        assert_eq!(role("embeddings.token_type_embeddings.weight").0, Kind::Embedding);
        assert_eq!(role("embeddings.LayerNorm.weight").0, Kind::Norm);
        assert_eq!(classify("embeddings.position_ids", 2).kind, Kind::Buffer);
        assert_eq!(role("pooler.dense.weight"), (Kind::Other, Other, None));
        assert_eq!(role("cls.predictions.decoder.weight").0, Kind::LmHead);
    }

    #[test]
    fn gpt2_with_and_without_prefix() {
        for prefix in ["", "transformer."] {
            let r = |s: &str| role(&format!("{prefix}{s}"));
            assert_eq!(r("h.11.attn.c_attn.weight"), (Kind::Qkv, Class::Selection, Some(11)));
            assert_eq!(r("h.11.attn.c_proj.weight").0, Kind::O);
            assert_eq!(r("h.11.mlp.c_fc.weight").0, Kind::FfnIn);
            assert_eq!(r("h.11.mlp.c_proj.weight").0, Kind::FfnOut);
            assert_eq!(r("h.11.attn.bias").0, Kind::Buffer);
            assert_eq!(r("h.11.ln_1.weight").0, Kind::Norm);
            assert_eq!(r("wte.weight").0, Kind::Embedding);
            assert_eq!(r("wpe.weight").0, Kind::Embedding);
            assert_eq!(r("ln_f.weight").0, Kind::Norm);
        }
    }

    #[test]
    fn olmo1_native() {
        let p = "model.transformer.blocks.4.";
        assert_eq!(role(&format!("{p}att_proj.weight")), (Kind::Qkv, Class::Selection, Some(4)));
        assert_eq!(role(&format!("{p}attn_out.weight")).0, Kind::O);
        assert_eq!(role(&format!("{p}ff_proj.weight")).0, Kind::FfnIn);
        assert_eq!(role(&format!("{p}ff_out.weight")).0, Kind::FfnOut);
        assert_eq!(role(&format!("{p}attn_norm.weight")).0, Kind::Norm);
        assert_eq!(role("model.transformer.wte.weight").0, Kind::Embedding);
        assert_eq!(role("model.transformer.ff_out.weight").0, Kind::LmHead);
    }

    #[test]
    fn non_2d_tensors_are_excluded_whatever_their_name() {
        let r = classify("model.layers.0.self_attn.q_proj.weight", 3);
        assert_eq!((r.kind, r.class), (Kind::Q, Class::Excluded));
        assert_eq!(classify("conv.weight", 4).class, Class::Excluded);
        assert_eq!(classify("scalar", 0).class, Class::Excluded);
        assert!(!classify("scalar", 0).is_pooled());
    }

    #[test]
    fn unknown_names_are_other_and_keep_their_layer() {
        assert_eq!(
            role("vision.layers.2.patch_merger.weight"),
            (Kind::Other, Class::Other, Some(2))
        );
        assert_eq!(role("weight"), (Kind::Other, Class::Other, None));
        assert_eq!(role(""), (Kind::Other, Class::Other, None));
        assert_eq!(role("layers.x.q_proj.weight").2, None);
        assert_eq!(role("layers.99999999999.self_attn.q_proj.weight").2, None);
        assert!(classify("pooler.dense.weight", 2).is_pooled());
        assert!(!Class::Other.in_all());
    }

    #[test]
    fn names_and_classes_are_consistent() {
        for kind in Kind::ALL {
            assert!(!kind.name().is_empty());
            let pooled = kind.class().in_all();
            let matrix = !matches!(kind.class(), Class::Excluded | Class::Other);
            assert_eq!(pooled, matrix, "{kind:?}");
        }
        assert_eq!(Kind::FfnGateUp.name(), "ffn_gate_up");
        assert_eq!(Class::ALL.len(), 5);
    }
}
