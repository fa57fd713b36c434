//! The subset of ONNX's protobuf messages (onnx.proto, IR version 3 and later) that the
//! importer reads, written by hand for `prost` (no protoc). Field numbers follow
//! onnx.proto; fields not listed here are skipped by the decoder. `oneof` members are
//! plain optional fields (the wire format is the same).

#![allow(dead_code)]

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    pub domain: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    /// AttributeType: 1 FLOAT, 2 INT, 3 STRING, 4 TENSOR, 6 FLOATS, 7 INTS, ...
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

/// TensorProto.DataType values used here.
pub const FLOAT: i32 = 1;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;
pub const DOUBLE: i32 = 11;

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    /// DataLocation: 0 DEFAULT, 1 EXTERNAL
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    /// the `tensor_type` member of the `value` oneof
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProtoTensor {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Dimension {
    /// the `dim_value` member of the `value` oneof (0 when `dim_param` is set)
    #[prost(int64, tag = "1")]
    pub dim_value: i64,
    #[prost(string, tag = "2")]
    pub dim_param: String,
}

impl ModelProto {
    /// Decodes an ONNX model; `Err` with a one-line reason for bytes that are not one.
    pub fn parse(bytes: &[u8]) -> std::result::Result<ModelProto, String> {
        let m = ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model ({e})"))?;
        match &m.graph {
            Some(g) if m.ir_version > 0 && !g.node.is_empty() => Ok(m),
            _ => Err("not an ONNX model (no IR version or no graph nodes)".into()),
        }
    }
}

impl TensorProto {
    /// The shape, as non-negative sizes.
    pub fn shape(&self) -> std::result::Result<Vec<usize>, String> {
        self.dims
            .iter()
            .map(|&d| {
                usize::try_from(d).map_err(|_| format!("tensor '{}': dimension {d}", self.name))
            })
            .collect()
    }

    fn count(&self) -> std::result::Result<usize, String> {
        Ok(self.shape()?.iter().product())
    }

    /// The values as f64 (FLOAT, DOUBLE, INT32, INT64 tensors), raw or typed storage.
    pub fn values_f64(&self) -> std::result::Result<Vec<f64>, String> {
        if self.data_location == 1 {
            return Err(format!(
                "tensor '{}' keeps its data in an external file, which is not supported",
                self.name
            ));
        }
        let n = self.count()?;
        let raw = &self.raw_data;
        let v: Vec<f64> = match self.data_type {
            FLOAT if !raw.is_empty() => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            FLOAT => self.float_data.iter().map(|&x| x as f64).collect(),
            DOUBLE if !raw.is_empty() => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            DOUBLE => self.double_data.clone(),
            INT32 if !raw.is_empty() => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            INT32 => self.int32_data.iter().map(|&x| x as f64).collect(),
            INT64 if !raw.is_empty() => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            INT64 => self.int64_data.iter().map(|&x| x as f64).collect(),
            t => {
                return Err(format!(
                "tensor '{}' has data type {t}, only float, double, int32 and int64 are supported",
                self.name
            ))
            }
        };
        if v.len() != n {
            return Err(format!(
                "tensor '{}' has {} values for its shape {:?}",
                self.name,
                v.len(),
                self.dims
            ));
        }
        Ok(v)
    }

    /// The values as i64 (INT32 and INT64 tensors).
    pub fn values_i64(&self) -> std::result::Result<Vec<i64>, String> {
        let n = self.count()?;
        let raw = &self.raw_data;
        let v: Vec<i64> = match self.data_type {
            INT64 if !raw.is_empty() => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            INT64 => self.int64_data.clone(),
            INT32 if !raw.is_empty() => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            INT32 => self.int32_data.iter().map(|&x| x as i64).collect(),
            t => {
                return Err(format!(
                    "tensor '{}' has data type {t}, expected an integer type",
                    self.name
                ))
            }
        };
        if v.len() != n {
            return Err(format!(
                "tensor '{}' has {} values for its shape {:?}",
                self.name,
                v.len(),
                self.dims
            ));
        }
        Ok(v)
    }
}

impl NodeProto {
    pub fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attribute.iter().find(|a| a.name == name)
    }
}
