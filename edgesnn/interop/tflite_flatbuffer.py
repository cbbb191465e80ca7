"""A small TFLite flatbuffer writer on top of the ``tflite`` schema package (no TensorFlow).

Usage: add tensors (constants carry data), add builtin operators, then :meth:`finish`.
Batch dimensions are written as 1 with ``shape_signature`` -1, so an interpreter can
``resize_tensor_input`` to any batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

DTYPES = {np.dtype(np.float32): TensorType.FLOAT32, np.dtype(np.int8): TensorType.INT8,
          np.dtype(np.int32): TensorType.INT32, np.dtype(np.bool_): TensorType.BOOL,
          np.dtype(np.uint8): TensorType.UINT8, np.dtype(np.int64): TensorType.INT64}
_PLACEHOLDER = 127  # deprecated_builtin_code for operators numbered >= 127


@dataclass
class _Tensor:
    name: str
    shape: list[int]
    signature: list[int]
    dtype: int
    buffer: int
    quant: tuple[list[float], list[int], int] | None


@dataclass
class _Op:
    code: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[int, Any] | None  # (BuiltinOptions type, fn(builder) -> offset)


class TfliteBuilder:
    def __init__(self) -> None:
        self.tensors: list[_Tensor] = []
        self.buffers: list[bytes] = [b""]  # buffer 0: the empty sentinel
        self.ops: list[_Op] = []
        self.codes: list[int] = []

    def tensor(self, name: str, shape: list[int], dtype: Any, data: np.ndarray | None = None,
               quant: tuple[list[float], list[int], int] | None = None,
               batch_axis: int | None = None) -> int:
        buffer = 0
        if data is not None:
            arr = np.ascontiguousarray(data, dtype=dtype)
            if list(arr.shape) != list(shape):
                raise ValueError(f"tensor {name}: data shape {arr.shape} != {shape}")
            self.buffers.append(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
            buffer = len(self.buffers) - 1
        signature = list(shape)
        if batch_axis is not None:
            signature[batch_axis] = -1
        self.tensors.append(_Tensor(name, list(shape), signature, DTYPES[np.dtype(dtype)],
                                    buffer, quant))
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray, quant: Any = None) -> int:
        return self.tensor(name, list(data.shape), data.dtype, data, quant)

    def op(self, code: int, inputs: list[int], outputs: list[int],
           options: tuple[int, Any] | None = None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        self.ops.append(_Op(code, inputs, outputs, options))

    # -- serialisation -------------------------------------------------------------------
    @staticmethod
    def _ivec(b: flatbuffers.Builder, values: list[int]) -> int:
        return b.CreateNumpyVector(np.asarray(values, dtype=np.int32))

    def finish(self, inputs: list[int], outputs: list[int], description: str,
               metadata: dict[str, Any] | None = None) -> bytes:
        b = flatbuffers.Builder(1024)
        meta_buffer = None
        if metadata is not None:
            self.buffers.append(json.dumps(metadata, sort_keys=True).encode())
            meta_buffer = len(self.buffers) - 1
        # buffers (data 16-byte aligned)
        buf_offsets = []
        for data in self.buffers:
            vec = None
            if data:
                b.StartVector(1, len(data), 16)
                b.head = b.head - len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                vec = b.EndVector()
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buf_offsets.append(tflite.BufferEnd(b))
        # tensors
        t_offsets = []
        for t in self.tensors:
            name = b.CreateString(t.name)
            shape = self._ivec(b, t.shape)
            sig = self._ivec(b, t.signature)
            q = None
            if t.quant is not None:
                scales, zps, axis = t.quant
                sv = b.CreateNumpyVector(np.asarray(scales, np.float32))
                zv = b.CreateNumpyVector(np.asarray(zps, np.int64))
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, sv)
                tflite.QuantizationParametersAddZeroPoint(b, zv)
                tflite.QuantizationParametersAddQuantizedDimension(b, axis)
                q = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddShapeSignature(b, sig)
            tflite.TensorAddType(b, t.dtype)
            tflite.TensorAddBuffer(b, t.buffer)
            tflite.TensorAddName(b, name)
            if q is not None:
                tflite.TensorAddQuantization(b, q)
            t_offsets.append(tflite.TensorEnd(b))
        # operators
        o_offsets = []
        for op in self.ops:
            ins, outs = self._ivec(b, op.inputs), self._ivec(b, op.outputs)
            opt = op.options[1](b) if op.options else None
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, self.codes.index(op.code))
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if op.options:
                tflite.OperatorAddBuiltinOptionsType(b, op.options[0])
                tflite.OperatorAddBuiltinOptions(b, opt)
            o_offsets.append(tflite.OperatorEnd(b))

        def vec_of(offsets: list[int], start: Any) -> int:
            start(b, len(offsets))
            for off in reversed(offsets):
                b.PrependUOffsetTRelative(off)
            return b.EndVector()

        tensors_v = vec_of(t_offsets, tflite.SubGraphStartTensorsVector)
        ops_v = vec_of(o_offsets, tflite.SubGraphStartOperatorsVector)
        in_v, out_v = self._ivec(b, inputs), self._ivec(b, outputs)
        sg_name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_v)
        tflite.SubGraphAddInputs(b, in_v)
        tflite.SubGraphAddOutputs(b, out_v)
        tflite.SubGraphAddOperators(b, ops_v)
        tflite.SubGraphAddName(b, sg_name)
        subgraph = tflite.SubGraphEnd(b)
        code_offsets = []
        for code in self.codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, _PLACEHOLDER))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))
        codes_v = vec_of(code_offsets, tflite.ModelStartOperatorCodesVector)
        subgraphs_v = vec_of([subgraph], tflite.ModelStartSubgraphsVector)
        buffers_v = vec_of(buf_offsets, tflite.ModelStartBuffersVector)
        meta_v = None
        if meta_buffer is not None:
            mname = b.CreateString("edgesnn")
            tflite.MetadataStart(b)
            tflite.MetadataAddName(b, mname)
            tflite.MetadataAddBuffer(b, meta_buffer)
            meta_v = vec_of([tflite.MetadataEnd(b)], tflite.ModelStartMetadataVector)
        desc = b.CreateString(description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_v)
        tflite.ModelAddSubgraphs(b, subgraphs_v)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, buffers_v)
        if meta_v is not None:
            tflite.ModelAddMetadata(b, meta_v)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


# -- builtin options -------------------------------------------------------------------------
def fc_options(relu: bool = False) -> tuple[int, Any]:
    from tflite.ActivationFunctionType import ActivationFunctionType

    def build(b: flatbuffers.Builder) -> int:
        tflite.FullyConnectedOptionsStart(b)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(
            b, ActivationFunctionType.RELU if relu else ActivationFunctionType.NONE)
        return tflite.FullyConnectedOptionsEnd(b)

    return BuiltinOptions.FullyConnectedOptions, build


def unpack_options(num: int, axis: int) -> tuple[int, Any]:
    def build(b: flatbuffers.Builder) -> int:
        tflite.UnpackOptionsStart(b)
        tflite.UnpackOptionsAddNum(b, num)
        tflite.UnpackOptionsAddAxis(b, axis)
        return tflite.UnpackOptionsEnd(b)

    return BuiltinOptions.UnpackOptions, build


def _empty(kind: str) -> tuple[int, Any]:
    def build(b: flatbuffers.Builder) -> int:
        getattr(tflite, f"{kind}Start")(b)
        return getattr(tflite, f"{kind}End")(b)

    return getattr(BuiltinOptions, kind), build


def add_options() -> tuple[int, Any]:
    return _empty("AddOptions")


def sub_options() -> tuple[int, Any]:
    return _empty("SubOptions")


def mul_options() -> tuple[int, Any]:
    return _empty("MulOptions")


OP = BuiltinOperator
