from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_SUCCESS: _ClassVar[Outcome]
    OUTCOME_GUEST_ERROR: _ClassVar[Outcome]
    OUTCOME_TRAP: _ClassVar[Outcome]
    OUTCOME_FUEL_EXHAUSTED: _ClassVar[Outcome]
    OUTCOME_WORK_BUDGET_EXHAUSTED: _ClassVar[Outcome]
    OUTCOME_MEMORY_LIMIT: _ClassVar[Outcome]
    OUTCOME_GPU_QUOTA_EXCEEDED: _ClassVar[Outcome]
    OUTCOME_OUTPUT_LIMIT_EXCEEDED: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_SUCCESS: Outcome
OUTCOME_GUEST_ERROR: Outcome
OUTCOME_TRAP: Outcome
OUTCOME_FUEL_EXHAUSTED: Outcome
OUTCOME_WORK_BUDGET_EXHAUSTED: Outcome
OUTCOME_MEMORY_LIMIT: Outcome
OUTCOME_GPU_QUOTA_EXCEEDED: Outcome
OUTCOME_OUTPUT_LIMIT_EXCEEDED: Outcome

class Auth(_message.Message):
    __slots__ = ("node_id", "nonce", "expires_at_ms", "signature", "coordinator_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    nonce: int
    expires_at_ms: int
    signature: bytes
    coordinator_id: bytes
    def __init__(self, node_id: _Optional[bytes] = ..., nonce: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., signature: _Optional[bytes] = ..., coordinator_id: _Optional[bytes] = ...) -> None: ...

class Shard(_message.Message):
    __slots__ = ("index", "count")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    index: int
    count: int
    def __init__(self, index: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("fuel", "memory_bytes", "gpu_memory_bytes", "work_budget", "output_bytes", "log_bytes", "wall_clock_ms", "start_time_ms", "shard", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FUEL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORK_BUDGET_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOG_BYTES_FIELD_NUMBER: _ClassVar[int]
    WALL_CLOCK_MS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    fuel: int
    memory_bytes: int
    gpu_memory_bytes: int
    work_budget: int
    output_bytes: int
    log_bytes: int
    wall_clock_ms: int
    start_time_ms: int
    shard: Shard
    params: _containers.ScalarMap[str, str]
    def __init__(self, fuel: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpu_memory_bytes: _Optional[int] = ..., work_budget: _Optional[int] = ..., output_bytes: _Optional[int] = ..., log_bytes: _Optional[int] = ..., wall_clock_ms: _Optional[int] = ..., start_time_ms: _Optional[int] = ..., shard: _Optional[_Union[Shard, _Mapping]] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BlobRef(_message.Message):
    __slots__ = ("name", "hash", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    hash: bytes
    size: int
    def __init__(self, name: _Optional[str] = ..., hash: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...

class WorkDone(_message.Message):
    __slots__ = ("flops", "bytes")
    FLOPS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    flops: int
    bytes: int
    def __init__(self, flops: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class Backend(_message.Message):
    __slots__ = ("kind", "device")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    device: str
    def __init__(self, kind: _Optional[str] = ..., device: _Optional[str] = ...) -> None: ...

class TelemetrySummary(_message.Message):
    __slots__ = ("samples", "max_temperature_c", "mean_power_mw", "mean_utilization_pct")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    MEAN_POWER_MW_FIELD_NUMBER: _ClassVar[int]
    MEAN_UTILIZATION_PCT_FIELD_NUMBER: _ClassVar[int]
    samples: int
    max_temperature_c: int
    mean_power_mw: int
    mean_utilization_pct: int
    def __init__(self, samples: _Optional[int] = ..., max_temperature_c: _Optional[int] = ..., mean_power_mw: _Optional[int] = ..., mean_utilization_pct: _Optional[int] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("job_id", "shard", "provider_id", "component_hash", "inputs_root", "outputs_root", "outcome", "fuel_used", "work", "backend", "telemetry", "started_at_ms", "finished_at_ms", "signature", "semantics", "trace_root")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_HASH_FIELD_NUMBER: _ClassVar[int]
    INPUTS_ROOT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_ROOT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FUEL_USED_FIELD_NUMBER: _ClassVar[int]
    WORK_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SEMANTICS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ROOT_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    shard: Shard
    provider_id: bytes
    component_hash: bytes
    inputs_root: bytes
    outputs_root: bytes
    outcome: Outcome
    fuel_used: int
    work: WorkDone
    backend: Backend
    telemetry: TelemetrySummary
    started_at_ms: int
    finished_at_ms: int
    signature: bytes
    semantics: int
    trace_root: bytes
    def __init__(self, job_id: _Optional[bytes] = ..., shard: _Optional[_Union[Shard, _Mapping]] = ..., provider_id: _Optional[bytes] = ..., component_hash: _Optional[bytes] = ..., inputs_root: _Optional[bytes] = ..., outputs_root: _Optional[bytes] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., fuel_used: _Optional[int] = ..., work: _Optional[_Union[WorkDone, _Mapping]] = ..., backend: _Optional[_Union[Backend, _Mapping]] = ..., telemetry: _Optional[_Union[TelemetrySummary, _Mapping]] = ..., started_at_ms: _Optional[int] = ..., finished_at_ms: _Optional[int] = ..., signature: _Optional[bytes] = ..., semantics: _Optional[int] = ..., trace_root: _Optional[bytes] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("auth", "hash", "size")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    hash: bytes
    size: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., hash: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadResponse(_message.Message):
    __slots__ = ("hash", "size", "already_present")
    HASH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    size: int
    already_present: bool
    def __init__(self, hash: _Optional[bytes] = ..., size: _Optional[int] = ..., already_present: _Optional[bool] = ...) -> None: ...

class DownloadRequest(_message.Message):
    __slots__ = ("hash", "offset", "length", "auth", "job_id")
    HASH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    offset: int
    length: int
    auth: Auth
    job_id: bytes
    def __init__(self, hash: _Optional[bytes] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., auth: _Optional[_Union[Auth, _Mapping]] = ..., job_id: _Optional[bytes] = ...) -> None: ...

class DownloadResponse(_message.Message):
    __slots__ = ("chunk", "total_size")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    total_size: int
    def __init__(self, chunk: _Optional[bytes] = ..., total_size: _Optional[int] = ...) -> None: ...

class StatRequest(_message.Message):
    __slots__ = ("hashes", "auth", "job_id")
    HASHES_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    auth: Auth
    job_id: bytes
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ..., auth: _Optional[_Union[Auth, _Mapping]] = ..., job_id: _Optional[bytes] = ...) -> None: ...

class BlobInfo(_message.Message):
    __slots__ = ("hash", "size")
    HASH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    size: int
    def __init__(self, hash: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...

class StatResponse(_message.Message):
    __slots__ = ("present",)
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    present: _containers.RepeatedCompositeFieldContainer[BlobInfo]
    def __init__(self, present: _Optional[_Iterable[_Union[BlobInfo, _Mapping]]] = ...) -> None: ...

class IssueNoteRequest(_message.Message):
    __slots__ = ("auth", "shares", "term_days")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    TERM_DAYS_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    shares: int
    term_days: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., shares: _Optional[int] = ..., term_days: _Optional[int] = ...) -> None: ...

class OfferSharesRequest(_message.Message):
    __slots__ = ("auth", "note_id", "shares", "price")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    NOTE_ID_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    note_id: bytes
    shares: int
    price: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., note_id: _Optional[bytes] = ..., shares: _Optional[int] = ..., price: _Optional[int] = ...) -> None: ...

class BuySharesRequest(_message.Message):
    __slots__ = ("auth", "note_id", "seller", "shares", "max_price")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    NOTE_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    note_id: bytes
    seller: bytes
    shares: int
    max_price: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., note_id: _Optional[bytes] = ..., seller: _Optional[bytes] = ..., shares: _Optional[int] = ..., max_price: _Optional[int] = ...) -> None: ...

class TransferSharesRequest(_message.Message):
    __slots__ = ("auth", "note_id", "to", "shares")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    NOTE_ID_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    note_id: bytes
    to: bytes
    shares: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., note_id: _Optional[bytes] = ..., to: _Optional[bytes] = ..., shares: _Optional[int] = ...) -> None: ...

class GetNoteRequest(_message.Message):
    __slots__ = ("note_id",)
    NOTE_ID_FIELD_NUMBER: _ClassVar[int]
    note_id: bytes
    def __init__(self, note_id: _Optional[bytes] = ...) -> None: ...

class Holding(_message.Message):
    __slots__ = ("holder", "amount")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    holder: bytes
    amount: int
    def __init__(self, holder: _Optional[bytes] = ..., amount: _Optional[int] = ...) -> None: ...

class ShareOffer(_message.Message):
    __slots__ = ("seller", "shares", "price")
    SELLER_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    seller: bytes
    shares: int
    price: int
    def __init__(self, seller: _Optional[bytes] = ..., shares: _Optional[int] = ..., price: _Optional[int] = ...) -> None: ...

class NoteResponse(_message.Message):
    __slots__ = ("note_id", "device", "shares", "holders_bps", "term_days", "issued_at", "ends_at", "holdings", "offers")
    NOTE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_BPS_FIELD_NUMBER: _ClassVar[int]
    TERM_DAYS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    HOLDINGS_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    note_id: bytes
    device: bytes
    shares: int
    holders_bps: int
    term_days: int
    issued_at: int
    ends_at: int
    holdings: _containers.RepeatedCompositeFieldContainer[Holding]
    offers: _containers.RepeatedCompositeFieldContainer[ShareOffer]
    def __init__(self, note_id: _Optional[bytes] = ..., device: _Optional[bytes] = ..., shares: _Optional[int] = ..., holders_bps: _Optional[int] = ..., term_days: _Optional[int] = ..., issued_at: _Optional[int] = ..., ends_at: _Optional[int] = ..., holdings: _Optional[_Iterable[_Union[Holding, _Mapping]]] = ..., offers: _Optional[_Iterable[_Union[ShareOffer, _Mapping]]] = ...) -> None: ...

class IssueBondRequest(_message.Message):
    __slots__ = ("auth", "principal", "coupon_bps", "maturity_days")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    COUPON_BPS_FIELD_NUMBER: _ClassVar[int]
    MATURITY_DAYS_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    principal: int
    coupon_bps: int
    maturity_days: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., principal: _Optional[int] = ..., coupon_bps: _Optional[int] = ..., maturity_days: _Optional[int] = ...) -> None: ...

class BuyBondRequest(_message.Message):
    __slots__ = ("auth", "bond_id", "amount")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    BOND_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    bond_id: bytes
    amount: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., bond_id: _Optional[bytes] = ..., amount: _Optional[int] = ...) -> None: ...

class GetBondRequest(_message.Message):
    __slots__ = ("bond_id",)
    BOND_ID_FIELD_NUMBER: _ClassVar[int]
    bond_id: bytes
    def __init__(self, bond_id: _Optional[bytes] = ...) -> None: ...

class BondResponse(_message.Message):
    __slots__ = ("bond_id", "device", "principal", "sold", "coupon_bps", "maturity_days", "issued_at", "matures_at", "coupon_total", "coupon_paid", "escrowed", "state", "shortfall", "holdings")
    BOND_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    SOLD_FIELD_NUMBER: _ClassVar[int]
    COUPON_BPS_FIELD_NUMBER: _ClassVar[int]
    MATURITY_DAYS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    MATURES_AT_FIELD_NUMBER: _ClassVar[int]
    COUPON_TOTAL_FIELD_NUMBER: _ClassVar[int]
    COUPON_PAID_FIELD_NUMBER: _ClassVar[int]
    ESCROWED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_FIELD_NUMBER: _ClassVar[int]
    HOLDINGS_FIELD_NUMBER: _ClassVar[int]
    bond_id: bytes
    device: bytes
    principal: int
    sold: int
    coupon_bps: int
    maturity_days: int
    issued_at: int
    matures_at: int
    coupon_total: int
    coupon_paid: int
    escrowed: int
    state: str
    shortfall: int
    holdings: _containers.RepeatedCompositeFieldContainer[Holding]
    def __init__(self, bond_id: _Optional[bytes] = ..., device: _Optional[bytes] = ..., principal: _Optional[int] = ..., sold: _Optional[int] = ..., coupon_bps: _Optional[int] = ..., maturity_days: _Optional[int] = ..., issued_at: _Optional[int] = ..., matures_at: _Optional[int] = ..., coupon_total: _Optional[int] = ..., coupon_paid: _Optional[int] = ..., escrowed: _Optional[int] = ..., state: _Optional[str] = ..., shortfall: _Optional[int] = ..., holdings: _Optional[_Iterable[_Union[Holding, _Mapping]]] = ...) -> None: ...

class PostPriceRequest(_message.Message):
    __slots__ = ("round", "micro_iosd_per_io", "at_ms", "signature")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MICRO_IOSD_PER_IO_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    round: int
    micro_iosd_per_io: int
    at_ms: int
    signature: bytes
    def __init__(self, round: _Optional[int] = ..., micro_iosd_per_io: _Optional[int] = ..., at_ms: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetPriceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PriceResponse(_message.Message):
    __slots__ = ("micro_iosd_per_io", "source", "oracle", "round", "at_ms")
    MICRO_IOSD_PER_IO_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ORACLE_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    micro_iosd_per_io: int
    source: str
    oracle: bytes
    round: int
    at_ms: int
    def __init__(self, micro_iosd_per_io: _Optional[int] = ..., source: _Optional[str] = ..., oracle: _Optional[bytes] = ..., round: _Optional[int] = ..., at_ms: _Optional[int] = ...) -> None: ...

class GetSupplyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SupplyResponse(_message.Message):
    __slots__ = ("io_cap", "io_genesis", "io_emitted", "io_unemitted", "io_burned", "io_held", "iosd_minted", "iosd_burned", "iosd_supply", "iosd_legacy_minted", "price", "price_error")
    IO_CAP_FIELD_NUMBER: _ClassVar[int]
    IO_GENESIS_FIELD_NUMBER: _ClassVar[int]
    IO_EMITTED_FIELD_NUMBER: _ClassVar[int]
    IO_UNEMITTED_FIELD_NUMBER: _ClassVar[int]
    IO_BURNED_FIELD_NUMBER: _ClassVar[int]
    IO_HELD_FIELD_NUMBER: _ClassVar[int]
    IOSD_MINTED_FIELD_NUMBER: _ClassVar[int]
    IOSD_BURNED_FIELD_NUMBER: _ClassVar[int]
    IOSD_SUPPLY_FIELD_NUMBER: _ClassVar[int]
    IOSD_LEGACY_MINTED_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    PRICE_ERROR_FIELD_NUMBER: _ClassVar[int]
    io_cap: int
    io_genesis: int
    io_emitted: int
    io_unemitted: int
    io_burned: int
    io_held: int
    iosd_minted: int
    iosd_burned: int
    iosd_supply: int
    iosd_legacy_minted: int
    price: PriceResponse
    price_error: str
    def __init__(self, io_cap: _Optional[int] = ..., io_genesis: _Optional[int] = ..., io_emitted: _Optional[int] = ..., io_unemitted: _Optional[int] = ..., io_burned: _Optional[int] = ..., io_held: _Optional[int] = ..., iosd_minted: _Optional[int] = ..., iosd_burned: _Optional[int] = ..., iosd_supply: _Optional[int] = ..., iosd_legacy_minted: _Optional[int] = ..., price: _Optional[_Union[PriceResponse, _Mapping]] = ..., price_error: _Optional[str] = ...) -> None: ...

class ListRewardEpochsRequest(_message.Message):
    __slots__ = ("before", "limit", "epoch", "has_epoch")
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    HAS_EPOCH_FIELD_NUMBER: _ClassVar[int]
    before: int
    limit: int
    epoch: int
    has_epoch: bool
    def __init__(self, before: _Optional[int] = ..., limit: _Optional[int] = ..., epoch: _Optional[int] = ..., has_epoch: _Optional[bool] = ...) -> None: ...

class RewardPayout(_message.Message):
    __slots__ = ("provider", "work_units", "uptime_ms", "failed", "amount")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    WORK_UNITS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    provider: bytes
    work_units: int
    uptime_ms: int
    failed: bool
    amount: int
    def __init__(self, provider: _Optional[bytes] = ..., work_units: _Optional[int] = ..., uptime_ms: _Optional[int] = ..., failed: _Optional[bool] = ..., amount: _Optional[int] = ...) -> None: ...

class RewardEpoch(_message.Message):
    __slots__ = ("epoch", "start_ms", "end_ms", "scheduled", "emitted", "nominated", "paid", "failed", "closed_at", "payouts")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    EMITTED_FIELD_NUMBER: _ClassVar[int]
    NOMINATED_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYOUTS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    start_ms: int
    end_ms: int
    scheduled: int
    emitted: int
    nominated: int
    paid: int
    failed: int
    closed_at: int
    payouts: _containers.RepeatedCompositeFieldContainer[RewardPayout]
    def __init__(self, epoch: _Optional[int] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ..., scheduled: _Optional[int] = ..., emitted: _Optional[int] = ..., nominated: _Optional[int] = ..., paid: _Optional[int] = ..., failed: _Optional[int] = ..., closed_at: _Optional[int] = ..., payouts: _Optional[_Iterable[_Union[RewardPayout, _Mapping]]] = ...) -> None: ...

class ListRewardEpochsResponse(_message.Message):
    __slots__ = ("epochs",)
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    epochs: _containers.RepeatedCompositeFieldContainer[RewardEpoch]
    def __init__(self, epochs: _Optional[_Iterable[_Union[RewardEpoch, _Mapping]]] = ...) -> None: ...

class UnstakeRequest(_message.Message):
    __slots__ = ("auth", "amount")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    amount: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., amount: _Optional[int] = ...) -> None: ...

class CreateClusterRequest(_message.Message):
    __slots__ = ("auth", "gpus", "gpu_class", "min_reliability_permille", "hours", "max_price")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_CLASS_FIELD_NUMBER: _ClassVar[int]
    MIN_RELIABILITY_PERMILLE_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    gpus: int
    gpu_class: str
    min_reliability_permille: int
    hours: int
    max_price: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., gpus: _Optional[int] = ..., gpu_class: _Optional[str] = ..., min_reliability_permille: _Optional[int] = ..., hours: _Optional[int] = ..., max_price: _Optional[int] = ...) -> None: ...

class ExtendClusterRequest(_message.Message):
    __slots__ = ("auth", "cluster_id", "hours")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    cluster_id: bytes
    hours: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., cluster_id: _Optional[bytes] = ..., hours: _Optional[int] = ...) -> None: ...

class ReleaseClusterRequest(_message.Message):
    __slots__ = ("auth", "cluster_id")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    cluster_id: bytes
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., cluster_id: _Optional[bytes] = ...) -> None: ...

class GetClusterRequest(_message.Message):
    __slots__ = ("cluster_id",)
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    cluster_id: bytes
    def __init__(self, cluster_id: _Optional[bytes] = ...) -> None: ...

class ListClustersRequest(_message.Message):
    __slots__ = ("renter", "provider", "active_only", "limit")
    RENTER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    renter: bytes
    provider: bytes
    active_only: bool
    limit: int
    def __init__(self, renter: _Optional[bytes] = ..., provider: _Optional[bytes] = ..., active_only: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class ListClustersResponse(_message.Message):
    __slots__ = ("clusters",)
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    clusters: _containers.RepeatedCompositeFieldContainer[Cluster]
    def __init__(self, clusters: _Optional[_Iterable[_Union[Cluster, _Mapping]]] = ...) -> None: ...

class ClusterMember(_message.Message):
    __slots__ = ("provider", "reserve_price", "work_price", "joined_ms", "left_ms", "state", "why_left", "paid", "budget")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    RESERVE_PRICE_FIELD_NUMBER: _ClassVar[int]
    WORK_PRICE_FIELD_NUMBER: _ClassVar[int]
    JOINED_MS_FIELD_NUMBER: _ClassVar[int]
    LEFT_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WHY_LEFT_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    provider: bytes
    reserve_price: int
    work_price: int
    joined_ms: int
    left_ms: int
    state: str
    why_left: str
    paid: int
    budget: int
    def __init__(self, provider: _Optional[bytes] = ..., reserve_price: _Optional[int] = ..., work_price: _Optional[int] = ..., joined_ms: _Optional[int] = ..., left_ms: _Optional[int] = ..., state: _Optional[str] = ..., why_left: _Optional[str] = ..., paid: _Optional[int] = ..., budget: _Optional[int] = ...) -> None: ...

class Cluster(_message.Message):
    __slots__ = ("cluster_id", "renter", "state", "gpus", "gpu_class", "min_reliability_permille", "max_price", "starts_ms", "ends_ms", "escrow_left", "paid", "refunded", "members", "escrowed", "ended_ms")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    RENTER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_CLASS_FIELD_NUMBER: _ClassVar[int]
    MIN_RELIABILITY_PERMILLE_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    STARTS_MS_FIELD_NUMBER: _ClassVar[int]
    ENDS_MS_FIELD_NUMBER: _ClassVar[int]
    ESCROW_LEFT_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ESCROWED_FIELD_NUMBER: _ClassVar[int]
    ENDED_MS_FIELD_NUMBER: _ClassVar[int]
    cluster_id: bytes
    renter: bytes
    state: str
    gpus: int
    gpu_class: str
    min_reliability_permille: int
    max_price: int
    starts_ms: int
    ends_ms: int
    escrow_left: int
    paid: int
    refunded: int
    members: _containers.RepeatedCompositeFieldContainer[ClusterMember]
    escrowed: int
    ended_ms: int
    def __init__(self, cluster_id: _Optional[bytes] = ..., renter: _Optional[bytes] = ..., state: _Optional[str] = ..., gpus: _Optional[int] = ..., gpu_class: _Optional[str] = ..., min_reliability_permille: _Optional[int] = ..., max_price: _Optional[int] = ..., starts_ms: _Optional[int] = ..., ends_ms: _Optional[int] = ..., escrow_left: _Optional[int] = ..., paid: _Optional[int] = ..., refunded: _Optional[int] = ..., members: _Optional[_Iterable[_Union[ClusterMember, _Mapping]]] = ..., escrowed: _Optional[int] = ..., ended_ms: _Optional[int] = ...) -> None: ...

class GetCoordinatorRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CoordinatorInfo(_message.Message):
    __slots__ = ("coordinator_id", "now_ms")
    COORDINATOR_ID_FIELD_NUMBER: _ClassVar[int]
    NOW_MS_FIELD_NUMBER: _ClassVar[int]
    coordinator_id: bytes
    now_ms: int
    def __init__(self, coordinator_id: _Optional[bytes] = ..., now_ms: _Optional[int] = ...) -> None: ...

class FaucetRequest(_message.Message):
    __slots__ = ("auth", "amount", "unit")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    amount: int
    unit: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., amount: _Optional[int] = ..., unit: _Optional[str] = ...) -> None: ...

class StakeRequest(_message.Message):
    __slots__ = ("auth", "amount")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    amount: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., amount: _Optional[int] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    def __init__(self, node_id: _Optional[bytes] = ...) -> None: ...

class AccountResponse(_message.Message):
    __slots__ = ("node_id", "balance", "stake", "earnings", "verifier_earnings", "io_balance", "unbonding", "unbonding_release_ms", "rewards", "stake_floor")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    EARNINGS_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_EARNINGS_FIELD_NUMBER: _ClassVar[int]
    IO_BALANCE_FIELD_NUMBER: _ClassVar[int]
    UNBONDING_FIELD_NUMBER: _ClassVar[int]
    UNBONDING_RELEASE_MS_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    STAKE_FLOOR_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    balance: int
    stake: int
    earnings: int
    verifier_earnings: int
    io_balance: int
    unbonding: int
    unbonding_release_ms: int
    rewards: int
    stake_floor: int
    def __init__(self, node_id: _Optional[bytes] = ..., balance: _Optional[int] = ..., stake: _Optional[int] = ..., earnings: _Optional[int] = ..., verifier_earnings: _Optional[int] = ..., io_balance: _Optional[int] = ..., unbonding: _Optional[int] = ..., unbonding_release_ms: _Optional[int] = ..., rewards: _Optional[int] = ..., stake_floor: _Optional[int] = ...) -> None: ...

class Requirements(_message.Message):
    __slots__ = ("gpu",)
    GPU_FIELD_NUMBER: _ClassVar[int]
    gpu: bool
    def __init__(self, gpu: _Optional[bool] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("auth", "component_hash", "component_size", "inputs", "spec", "shards", "max_price", "requirements", "split_inputs", "verify_rate_ppm", "unverified", "pay_in", "cluster_id", "inline_blobs")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_HASH_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_INPUTS_FIELD_NUMBER: _ClassVar[int]
    VERIFY_RATE_PPM_FIELD_NUMBER: _ClassVar[int]
    UNVERIFIED_FIELD_NUMBER: _ClassVar[int]
    PAY_IN_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    INLINE_BLOBS_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    component_hash: bytes
    component_size: int
    inputs: _containers.RepeatedCompositeFieldContainer[BlobRef]
    spec: JobSpec
    shards: int
    max_price: int
    requirements: Requirements
    split_inputs: _containers.RepeatedScalarFieldContainer[str]
    verify_rate_ppm: int
    unverified: bool
    pay_in: str
    cluster_id: bytes
    inline_blobs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., component_hash: _Optional[bytes] = ..., component_size: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[BlobRef, _Mapping]]] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., shards: _Optional[int] = ..., max_price: _Optional[int] = ..., requirements: _Optional[_Union[Requirements, _Mapping]] = ..., split_inputs: _Optional[_Iterable[str]] = ..., verify_rate_ppm: _Optional[int] = ..., unverified: _Optional[bool] = ..., pay_in: _Optional[str] = ..., cluster_id: _Optional[bytes] = ..., inline_blobs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job_id", "escrow", "shard_job_ids", "io_burned")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ESCROW_FIELD_NUMBER: _ClassVar[int]
    SHARD_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    IO_BURNED_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    escrow: int
    shard_job_ids: _containers.RepeatedScalarFieldContainer[bytes]
    io_burned: int
    def __init__(self, job_id: _Optional[bytes] = ..., escrow: _Optional[int] = ..., shard_job_ids: _Optional[_Iterable[bytes]] = ..., io_burned: _Optional[int] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("renter", "offset", "limit")
    RENTER_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    renter: bytes
    offset: int
    limit: int
    def __init__(self, renter: _Optional[bytes] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class JobSummary(_message.Message):
    __slots__ = ("job_id", "renter", "state", "shards", "shards_done", "escrow", "paid_in", "paid", "verify_rate_ppm", "verified", "rejected", "created_at_ms")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RENTER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_DONE_FIELD_NUMBER: _ClassVar[int]
    ESCROW_FIELD_NUMBER: _ClassVar[int]
    PAID_IN_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    VERIFY_RATE_PPM_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    renter: bytes
    state: str
    shards: int
    shards_done: int
    escrow: int
    paid_in: str
    paid: int
    verify_rate_ppm: int
    verified: int
    rejected: int
    created_at_ms: int
    def __init__(self, job_id: _Optional[bytes] = ..., renter: _Optional[bytes] = ..., state: _Optional[str] = ..., shards: _Optional[int] = ..., shards_done: _Optional[int] = ..., escrow: _Optional[int] = ..., paid_in: _Optional[str] = ..., paid: _Optional[int] = ..., verify_rate_ppm: _Optional[int] = ..., verified: _Optional[int] = ..., rejected: _Optional[int] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "total")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobSummary]
    total: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobSummary, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id", "wait_ms", "seen_state", "inline_outputs_max_bytes", "auth")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    SEEN_STATE_FIELD_NUMBER: _ClassVar[int]
    INLINE_OUTPUTS_MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    wait_ms: int
    seen_state: str
    inline_outputs_max_bytes: int
    auth: Auth
    def __init__(self, job_id: _Optional[bytes] = ..., wait_ms: _Optional[int] = ..., seen_state: _Optional[str] = ..., inline_outputs_max_bytes: _Optional[int] = ..., auth: _Optional[_Union[Auth, _Mapping]] = ...) -> None: ...

class ShardStatus(_message.Message):
    __slots__ = ("index", "shard_job_id", "state", "provider", "attempts", "receipt", "outputs", "why_not_matched", "settled", "paid", "inputs", "verification", "rejected_receipts", "failure_message", "inline_outputs")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARD_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    WHY_NOT_MATCHED_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    REJECTED_RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INLINE_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    shard_job_id: bytes
    state: str
    provider: bytes
    attempts: int
    receipt: Receipt
    outputs: _containers.RepeatedCompositeFieldContainer[BlobRef]
    why_not_matched: str
    settled: bool
    paid: int
    inputs: _containers.RepeatedCompositeFieldContainer[BlobRef]
    verification: Verification
    rejected_receipts: _containers.RepeatedScalarFieldContainer[bytes]
    failure_message: str
    inline_outputs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, index: _Optional[int] = ..., shard_job_id: _Optional[bytes] = ..., state: _Optional[str] = ..., provider: _Optional[bytes] = ..., attempts: _Optional[int] = ..., receipt: _Optional[_Union[Receipt, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[BlobRef, _Mapping]]] = ..., why_not_matched: _Optional[str] = ..., settled: _Optional[bool] = ..., paid: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[BlobRef, _Mapping]]] = ..., verification: _Optional[_Union[Verification, _Mapping]] = ..., rejected_receipts: _Optional[_Iterable[bytes]] = ..., failure_message: _Optional[str] = ..., inline_outputs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Verification(_message.Message):
    __slots__ = ("state", "epoch", "reason", "verdicts", "note")
    STATE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    state: str
    epoch: int
    reason: str
    verdicts: _containers.RepeatedCompositeFieldContainer[VerdictRecord]
    note: str
    def __init__(self, state: _Optional[str] = ..., epoch: _Optional[int] = ..., reason: _Optional[str] = ..., verdicts: _Optional[_Iterable[_Union[VerdictRecord, _Mapping]]] = ..., note: _Optional[str] = ...) -> None: ...

class VerdictRecord(_message.Message):
    __slots__ = ("verifier", "role", "agrees", "outputs_root", "outcome", "fuel_used", "work", "at_ms", "arbitration")
    VERIFIER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AGREES_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_ROOT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FUEL_USED_FIELD_NUMBER: _ClassVar[int]
    WORK_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    ARBITRATION_FIELD_NUMBER: _ClassVar[int]
    verifier: bytes
    role: str
    agrees: bool
    outputs_root: bytes
    outcome: Outcome
    fuel_used: int
    work: WorkDone
    at_ms: int
    arbitration: str
    def __init__(self, verifier: _Optional[bytes] = ..., role: _Optional[str] = ..., agrees: _Optional[bool] = ..., outputs_root: _Optional[bytes] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., fuel_used: _Optional[int] = ..., work: _Optional[_Union[WorkDone, _Mapping]] = ..., at_ms: _Optional[int] = ..., arbitration: _Optional[str] = ...) -> None: ...

class Guarantee(_message.Message):
    __slots__ = ("rate_ppm", "slash_bps", "providers")
    RATE_PPM_FIELD_NUMBER: _ClassVar[int]
    SLASH_BPS_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    rate_ppm: int
    slash_bps: int
    providers: _containers.RepeatedCompositeFieldContainer[ProviderGuarantee]
    def __init__(self, rate_ppm: _Optional[int] = ..., slash_bps: _Optional[int] = ..., providers: _Optional[_Iterable[_Union[ProviderGuarantee, _Mapping]]] = ...) -> None: ...

class ProviderGuarantee(_message.Message):
    __slots__ = ("provider", "stake", "receipts", "escape")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    ESCAPE_FIELD_NUMBER: _ClassVar[int]
    provider: bytes
    stake: int
    receipts: int
    escape: _containers.RepeatedCompositeFieldContainer[EscapeOdds]
    def __init__(self, provider: _Optional[bytes] = ..., stake: _Optional[int] = ..., receipts: _Optional[int] = ..., escape: _Optional[_Iterable[_Union[EscapeOdds, _Mapping]]] = ...) -> None: ...

class EscapeOdds(_message.Message):
    __slots__ = ("cheat_fraction", "probability")
    CHEAT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    cheat_fraction: float
    probability: float
    def __init__(self, cheat_fraction: _Optional[float] = ..., probability: _Optional[float] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ("job_id", "renter", "state", "shards", "result_root", "escrow", "max_price", "created_at_ms", "component_hash", "inputs", "spec", "guarantee")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RENTER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    RESULT_ROOT_FIELD_NUMBER: _ClassVar[int]
    ESCROW_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_HASH_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    GUARANTEE_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    renter: bytes
    state: str
    shards: _containers.RepeatedCompositeFieldContainer[ShardStatus]
    result_root: bytes
    escrow: int
    max_price: int
    created_at_ms: int
    component_hash: bytes
    inputs: _containers.RepeatedCompositeFieldContainer[BlobRef]
    spec: JobSpec
    guarantee: Guarantee
    def __init__(self, job_id: _Optional[bytes] = ..., renter: _Optional[bytes] = ..., state: _Optional[str] = ..., shards: _Optional[_Iterable[_Union[ShardStatus, _Mapping]]] = ..., result_root: _Optional[bytes] = ..., escrow: _Optional[int] = ..., max_price: _Optional[int] = ..., created_at_ms: _Optional[int] = ..., component_hash: _Optional[bytes] = ..., inputs: _Optional[_Iterable[_Union[BlobRef, _Mapping]]] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., guarantee: _Optional[_Union[Guarantee, _Mapping]] = ...) -> None: ...

class ExportLedgerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("seq", "kind", "debit", "credit", "amount", "reference", "at_ms", "prev_hash", "hash", "unit", "format")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEBIT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: str
    debit: str
    credit: str
    amount: int
    reference: str
    at_ms: int
    prev_hash: bytes
    hash: bytes
    unit: str
    format: int
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[str] = ..., debit: _Optional[str] = ..., credit: _Optional[str] = ..., amount: _Optional[int] = ..., reference: _Optional[str] = ..., at_ms: _Optional[int] = ..., prev_hash: _Optional[bytes] = ..., hash: _Optional[bytes] = ..., unit: _Optional[str] = ..., format: _Optional[int] = ...) -> None: ...

class VerifyLedgerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyLedgerResponse(_message.Message):
    __slots__ = ("ok", "entries", "head", "problems")
    OK_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    entries: int
    head: bytes
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ok: _Optional[bool] = ..., entries: _Optional[int] = ..., head: _Optional[bytes] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class Gpu(_message.Message):
    __slots__ = ("name", "memory_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    memory_bytes: int
    def __init__(self, name: _Optional[str] = ..., memory_bytes: _Optional[int] = ...) -> None: ...

class Hardware(_message.Message):
    __slots__ = ("cpu_cores", "memory_bytes", "gpus")
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    cpu_cores: int
    memory_bytes: int
    gpus: _containers.RepeatedCompositeFieldContainer[Gpu]
    def __init__(self, cpu_cores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[Gpu, _Mapping]]] = ...) -> None: ...

class GpuTelemetry(_message.Message):
    __slots__ = ("index", "temperature_c", "power_mw", "utilization_pct", "memory_used_bytes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    POWER_MW_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_PCT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    index: int
    temperature_c: int
    power_mw: int
    utilization_pct: int
    memory_used_bytes: int
    def __init__(self, index: _Optional[int] = ..., temperature_c: _Optional[int] = ..., power_mw: _Optional[int] = ..., utilization_pct: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("auth", "hardware", "price", "stake", "slots", "version", "reserve_price")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RESERVE_PRICE_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    hardware: Hardware
    price: int
    stake: int
    slots: int
    version: str
    reserve_price: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., hardware: _Optional[_Union[Hardware, _Mapping]] = ..., price: _Optional[int] = ..., stake: _Optional[int] = ..., slots: _Optional[int] = ..., version: _Optional[str] = ..., reserve_price: _Optional[int] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("lease_ttl_ms", "heartbeat_interval_ms", "stake", "active_leases", "reliability_permille")
    LEASE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_LEASES_FIELD_NUMBER: _ClassVar[int]
    RELIABILITY_PERMILLE_FIELD_NUMBER: _ClassVar[int]
    lease_ttl_ms: int
    heartbeat_interval_ms: int
    stake: int
    active_leases: _containers.RepeatedScalarFieldContainer[bytes]
    reliability_permille: int
    def __init__(self, lease_ttl_ms: _Optional[int] = ..., heartbeat_interval_ms: _Optional[int] = ..., stake: _Optional[int] = ..., active_leases: _Optional[_Iterable[bytes]] = ..., reliability_permille: _Optional[int] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("auth", "free_slots", "gpus", "host", "held")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    FREE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    free_slots: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuTelemetry]
    host: HostTelemetry
    held: LeaseReport
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., free_slots: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuTelemetry, _Mapping]]] = ..., host: _Optional[_Union[HostTelemetry, _Mapping]] = ..., held: _Optional[_Union[LeaseReport, _Mapping]] = ...) -> None: ...

class LeaseReport(_message.Message):
    __slots__ = ("lease_ids",)
    LEASE_IDS_FIELD_NUMBER: _ClassVar[int]
    lease_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, lease_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HostTelemetry(_message.Message):
    __slots__ = ("cpu_load_permille", "memory_used_bytes", "memory_total_bytes")
    CPU_LOAD_PERMILLE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    cpu_load_permille: int
    memory_used_bytes: int
    memory_total_bytes: int
    def __init__(self, cpu_load_permille: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., memory_total_bytes: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("lease_ttl_ms", "registered", "active_leases", "clusters")
    LEASE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_LEASES_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    lease_ttl_ms: int
    registered: bool
    active_leases: _containers.RepeatedScalarFieldContainer[bytes]
    clusters: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, lease_ttl_ms: _Optional[int] = ..., registered: _Optional[bool] = ..., active_leases: _Optional[_Iterable[bytes]] = ..., clusters: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TakeLeasesRequest(_message.Message):
    __slots__ = ("auth", "max", "wait_ms")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    max: int
    wait_ms: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., max: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("lease_id", "job_id", "shard_job_id", "component_hash", "component_size", "inputs", "spec", "expires_at_ms", "price", "inline_inputs")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_HASH_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    INLINE_INPUTS_FIELD_NUMBER: _ClassVar[int]
    lease_id: bytes
    job_id: bytes
    shard_job_id: bytes
    component_hash: bytes
    component_size: int
    inputs: _containers.RepeatedCompositeFieldContainer[BlobRef]
    spec: JobSpec
    expires_at_ms: int
    price: int
    inline_inputs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, lease_id: _Optional[bytes] = ..., job_id: _Optional[bytes] = ..., shard_job_id: _Optional[bytes] = ..., component_hash: _Optional[bytes] = ..., component_size: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[BlobRef, _Mapping]]] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., expires_at_ms: _Optional[int] = ..., price: _Optional[int] = ..., inline_inputs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TakeLeasesResponse(_message.Message):
    __slots__ = ("leases",)
    LEASES_FIELD_NUMBER: _ClassVar[int]
    leases: _containers.RepeatedCompositeFieldContainer[Lease]
    def __init__(self, leases: _Optional[_Iterable[_Union[Lease, _Mapping]]] = ...) -> None: ...

class SubmitReceiptRequest(_message.Message):
    __slots__ = ("auth", "lease_id", "receipt", "outputs", "failure_message", "inline_outputs")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INLINE_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    lease_id: bytes
    receipt: Receipt
    outputs: _containers.RepeatedCompositeFieldContainer[BlobRef]
    failure_message: str
    inline_outputs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., lease_id: _Optional[bytes] = ..., receipt: _Optional[_Union[Receipt, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[BlobRef, _Mapping]]] = ..., failure_message: _Optional[str] = ..., inline_outputs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SubmitReceiptResponse(_message.Message):
    __slots__ = ("receipt_id", "settle_at_ms")
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    SETTLE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    receipt_id: bytes
    settle_at_ms: int
    def __init__(self, receipt_id: _Optional[bytes] = ..., settle_at_ms: _Optional[int] = ...) -> None: ...

class ReturnLeaseRequest(_message.Message):
    __slots__ = ("auth", "lease_id", "fault", "reason", "watchdog")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    FAULT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WATCHDOG_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    lease_id: bytes
    fault: bool
    reason: str
    watchdog: bool
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., lease_id: _Optional[bytes] = ..., fault: _Optional[bool] = ..., reason: _Optional[str] = ..., watchdog: _Optional[bool] = ...) -> None: ...

class ReturnLeaseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterVerifierRequest(_message.Message):
    __slots__ = ("auth", "stake", "version", "backend")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    stake: int
    version: str
    backend: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., stake: _Optional[int] = ..., version: _Optional[str] = ..., backend: _Optional[str] = ...) -> None: ...

class RegisterVerifierResponse(_message.Message):
    __slots__ = ("stake", "check_ttl_ms", "epoch_ms")
    STAKE_FIELD_NUMBER: _ClassVar[int]
    CHECK_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_MS_FIELD_NUMBER: _ClassVar[int]
    stake: int
    check_ttl_ms: int
    epoch_ms: int
    def __init__(self, stake: _Optional[int] = ..., check_ttl_ms: _Optional[int] = ..., epoch_ms: _Optional[int] = ...) -> None: ...

class ListReceiptsRequest(_message.Message):
    __slots__ = ("after_seq", "limit")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    limit: int
    def __init__(self, after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReceiptRecord(_message.Message):
    __slots__ = ("seq", "receipt_id", "job_id", "receipt", "outputs", "committed_at_ms", "epoch", "rate_ppm", "failure_message")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    RATE_PPM_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    receipt_id: bytes
    job_id: bytes
    receipt: Receipt
    outputs: _containers.RepeatedCompositeFieldContainer[BlobRef]
    committed_at_ms: int
    epoch: int
    rate_ppm: int
    failure_message: str
    def __init__(self, seq: _Optional[int] = ..., receipt_id: _Optional[bytes] = ..., job_id: _Optional[bytes] = ..., receipt: _Optional[_Union[Receipt, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[BlobRef, _Mapping]]] = ..., committed_at_ms: _Optional[int] = ..., epoch: _Optional[int] = ..., rate_ppm: _Optional[int] = ..., failure_message: _Optional[str] = ...) -> None: ...

class ListReceiptsResponse(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[ReceiptRecord]
    def __init__(self, receipts: _Optional[_Iterable[_Union[ReceiptRecord, _Mapping]]] = ...) -> None: ...

class GetBeaconRequest(_message.Message):
    __slots__ = ("from_epoch",)
    FROM_EPOCH_FIELD_NUMBER: _ClassVar[int]
    from_epoch: int
    def __init__(self, from_epoch: _Optional[int] = ...) -> None: ...

class EpochBeacon(_message.Message):
    __slots__ = ("epoch", "commitment", "seed")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    commitment: bytes
    seed: bytes
    def __init__(self, epoch: _Optional[int] = ..., commitment: _Optional[bytes] = ..., seed: _Optional[bytes] = ...) -> None: ...

class GetBeaconResponse(_message.Message):
    __slots__ = ("epoch_ms", "current_epoch", "epochs")
    EPOCH_MS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    epoch_ms: int
    current_epoch: int
    epochs: _containers.RepeatedCompositeFieldContainer[EpochBeacon]
    def __init__(self, epoch_ms: _Optional[int] = ..., current_epoch: _Optional[int] = ..., epochs: _Optional[_Iterable[_Union[EpochBeacon, _Mapping]]] = ...) -> None: ...

class TakeChecksRequest(_message.Message):
    __slots__ = ("auth", "max")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    max: int
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., max: _Optional[int] = ...) -> None: ...

class Check(_message.Message):
    __slots__ = ("check_id", "role", "reason", "record", "component_hash", "component_size", "inputs", "spec", "beacon", "deadline_ms", "step")
    CHECK_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_HASH_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    BEACON_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    check_id: bytes
    role: str
    reason: str
    record: ReceiptRecord
    component_hash: bytes
    component_size: int
    inputs: _containers.RepeatedCompositeFieldContainer[BlobRef]
    spec: JobSpec
    beacon: EpochBeacon
    deadline_ms: int
    step: DisputedStep
    def __init__(self, check_id: _Optional[bytes] = ..., role: _Optional[str] = ..., reason: _Optional[str] = ..., record: _Optional[_Union[ReceiptRecord, _Mapping]] = ..., component_hash: _Optional[bytes] = ..., component_size: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[BlobRef, _Mapping]]] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., beacon: _Optional[_Union[EpochBeacon, _Mapping]] = ..., deadline_ms: _Optional[int] = ..., step: _Optional[_Union[DisputedStep, _Mapping]] = ...) -> None: ...

class DisputedStep(_message.Message):
    __slots__ = ("dispute_id", "index", "call", "provider_output", "verifier_output", "provider_trace_root", "verifier_trace_root", "inputs", "kind", "provider_call", "verifier_call")
    DISPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_TRACE_ROOT_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_TRACE_ROOT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CALL_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_CALL_FIELD_NUMBER: _ClassVar[int]
    dispute_id: bytes
    index: int
    call: bytes
    provider_output: bytes
    verifier_output: bytes
    provider_trace_root: bytes
    verifier_trace_root: bytes
    inputs: _containers.RepeatedCompositeFieldContainer[StepTensor]
    kind: str
    provider_call: bytes
    verifier_call: bytes
    def __init__(self, dispute_id: _Optional[bytes] = ..., index: _Optional[int] = ..., call: _Optional[bytes] = ..., provider_output: _Optional[bytes] = ..., verifier_output: _Optional[bytes] = ..., provider_trace_root: _Optional[bytes] = ..., verifier_trace_root: _Optional[bytes] = ..., inputs: _Optional[_Iterable[_Union[StepTensor, _Mapping]]] = ..., kind: _Optional[str] = ..., provider_call: _Optional[bytes] = ..., verifier_call: _Optional[bytes] = ...) -> None: ...

class StepTensor(_message.Message):
    __slots__ = ("step", "call", "trace_steps", "siblings", "dtype", "shape", "tensor")
    STEP_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    TRACE_STEPS_FIELD_NUMBER: _ClassVar[int]
    SIBLINGS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    step: int
    call: bytes
    trace_steps: int
    siblings: _containers.RepeatedScalarFieldContainer[bytes]
    dtype: int
    shape: _containers.RepeatedScalarFieldContainer[int]
    tensor: BlobRef
    def __init__(self, step: _Optional[int] = ..., call: _Optional[bytes] = ..., trace_steps: _Optional[int] = ..., siblings: _Optional[_Iterable[bytes]] = ..., dtype: _Optional[int] = ..., shape: _Optional[_Iterable[int]] = ..., tensor: _Optional[_Union[BlobRef, _Mapping]] = ...) -> None: ...

class TakeChecksResponse(_message.Message):
    __slots__ = ("checks",)
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[Check]
    def __init__(self, checks: _Optional[_Iterable[_Union[Check, _Mapping]]] = ...) -> None: ...

class SubmitVerdictRequest(_message.Message):
    __slots__ = ("auth", "check_id", "receipt_id", "outputs_root", "outcome", "fuel_used", "work", "agrees", "trace_root", "step_output")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    CHECK_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_ROOT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FUEL_USED_FIELD_NUMBER: _ClassVar[int]
    WORK_FIELD_NUMBER: _ClassVar[int]
    AGREES_FIELD_NUMBER: _ClassVar[int]
    TRACE_ROOT_FIELD_NUMBER: _ClassVar[int]
    STEP_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    check_id: bytes
    receipt_id: bytes
    outputs_root: bytes
    outcome: Outcome
    fuel_used: int
    work: WorkDone
    agrees: bool
    trace_root: bytes
    step_output: bytes
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., check_id: _Optional[bytes] = ..., receipt_id: _Optional[bytes] = ..., outputs_root: _Optional[bytes] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., fuel_used: _Optional[int] = ..., work: _Optional[_Union[WorkDone, _Mapping]] = ..., agrees: _Optional[bool] = ..., trace_root: _Optional[bytes] = ..., step_output: _Optional[bytes] = ...) -> None: ...

class SubmitVerdictResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: str
    def __init__(self, decision: _Optional[str] = ...) -> None: ...

class ReturnCheckRequest(_message.Message):
    __slots__ = ("auth", "check_id", "reason")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    CHECK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    check_id: bytes
    reason: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., check_id: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class ReturnCheckResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TakeQuestionsRequest(_message.Message):
    __slots__ = ("auth",)
    AUTH_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ...) -> None: ...

class Question(_message.Message):
    __slots__ = ("dispute_id", "receipt_id", "check_id", "kind", "level", "index", "steps", "deadline_ms", "rerun")
    DISPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    CHECK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    RERUN_FIELD_NUMBER: _ClassVar[int]
    dispute_id: bytes
    receipt_id: bytes
    check_id: bytes
    kind: str
    level: int
    index: int
    steps: _containers.RepeatedScalarFieldContainer[int]
    deadline_ms: int
    rerun: Check
    def __init__(self, dispute_id: _Optional[bytes] = ..., receipt_id: _Optional[bytes] = ..., check_id: _Optional[bytes] = ..., kind: _Optional[str] = ..., level: _Optional[int] = ..., index: _Optional[int] = ..., steps: _Optional[_Iterable[int]] = ..., deadline_ms: _Optional[int] = ..., rerun: _Optional[_Union[Check, _Mapping]] = ...) -> None: ...

class TakeQuestionsResponse(_message.Message):
    __slots__ = ("questions",)
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    questions: _containers.RepeatedCompositeFieldContainer[Question]
    def __init__(self, questions: _Optional[_Iterable[_Union[Question, _Mapping]]] = ...) -> None: ...

class AnswerRequest(_message.Message):
    __slots__ = ("auth", "dispute_id", "kind", "trace_steps", "trace_top", "level", "index", "left", "right", "call", "output", "ended", "reveal_signature", "tensors", "unable")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TRACE_STEPS_FIELD_NUMBER: _ClassVar[int]
    TRACE_TOP_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    REVEAL_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    UNABLE_FIELD_NUMBER: _ClassVar[int]
    auth: Auth
    dispute_id: bytes
    kind: str
    trace_steps: int
    trace_top: bytes
    level: int
    index: int
    left: bytes
    right: bytes
    call: bytes
    output: bytes
    ended: bool
    reveal_signature: bytes
    tensors: _containers.RepeatedCompositeFieldContainer[StepTensor]
    unable: str
    def __init__(self, auth: _Optional[_Union[Auth, _Mapping]] = ..., dispute_id: _Optional[bytes] = ..., kind: _Optional[str] = ..., trace_steps: _Optional[int] = ..., trace_top: _Optional[bytes] = ..., level: _Optional[int] = ..., index: _Optional[int] = ..., left: _Optional[bytes] = ..., right: _Optional[bytes] = ..., call: _Optional[bytes] = ..., output: _Optional[bytes] = ..., ended: _Optional[bool] = ..., reveal_signature: _Optional[bytes] = ..., tensors: _Optional[_Iterable[_Union[StepTensor, _Mapping]]] = ..., unable: _Optional[str] = ...) -> None: ...

class AnswerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
