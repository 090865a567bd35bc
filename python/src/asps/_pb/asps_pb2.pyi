from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetSecretsRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetSecretsResponse(_message.Message):
    __slots__ = ("secrets",)
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    secrets: _containers.RepeatedCompositeFieldContainer[Secret]
    def __init__(self, secrets: _Optional[_Iterable[_Union[Secret, _Mapping]]] = ...) -> None: ...

class GetSecretRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: bytes
    def __init__(self, name: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("tee", "runtime", "quote_version", "debug", "tcb_status", "advisory_ids", "fmspc", "tcb_date", "collateral_expiry", "simulated", "report_data", "sgx", "tdx", "matched_app", "match_error", "secret_names")
    TEE_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    QUOTE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    TCB_STATUS_FIELD_NUMBER: _ClassVar[int]
    ADVISORY_IDS_FIELD_NUMBER: _ClassVar[int]
    FMSPC_FIELD_NUMBER: _ClassVar[int]
    TCB_DATE_FIELD_NUMBER: _ClassVar[int]
    COLLATERAL_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    REPORT_DATA_FIELD_NUMBER: _ClassVar[int]
    SGX_FIELD_NUMBER: _ClassVar[int]
    TDX_FIELD_NUMBER: _ClassVar[int]
    MATCHED_APP_FIELD_NUMBER: _ClassVar[int]
    MATCH_ERROR_FIELD_NUMBER: _ClassVar[int]
    SECRET_NAMES_FIELD_NUMBER: _ClassVar[int]
    tee: str
    runtime: str
    quote_version: int
    debug: bool
    tcb_status: str
    advisory_ids: _containers.RepeatedScalarFieldContainer[str]
    fmspc: str
    tcb_date: str
    collateral_expiry: str
    simulated: bool
    report_data: bytes
    sgx: SgxIdentity
    tdx: TdxIdentity
    matched_app: str
    match_error: str
    secret_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tee: _Optional[str] = ..., runtime: _Optional[str] = ..., quote_version: _Optional[int] = ..., debug: _Optional[bool] = ..., tcb_status: _Optional[str] = ..., advisory_ids: _Optional[_Iterable[str]] = ..., fmspc: _Optional[str] = ..., tcb_date: _Optional[str] = ..., collateral_expiry: _Optional[str] = ..., simulated: _Optional[bool] = ..., report_data: _Optional[bytes] = ..., sgx: _Optional[_Union[SgxIdentity, _Mapping]] = ..., tdx: _Optional[_Union[TdxIdentity, _Mapping]] = ..., matched_app: _Optional[str] = ..., match_error: _Optional[str] = ..., secret_names: _Optional[_Iterable[str]] = ...) -> None: ...

class SgxIdentity(_message.Message):
    __slots__ = ("mr_enclave", "mr_signer", "isv_prod_id", "isv_svn", "config_id", "config_svn", "isv_ext_prod_id", "isv_family_id", "attributes", "misc_select", "cpu_svn", "mode64", "provision_key", "einittoken_key", "kss")
    MR_ENCLAVE_FIELD_NUMBER: _ClassVar[int]
    MR_SIGNER_FIELD_NUMBER: _ClassVar[int]
    ISV_PROD_ID_FIELD_NUMBER: _ClassVar[int]
    ISV_SVN_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SVN_FIELD_NUMBER: _ClassVar[int]
    ISV_EXT_PROD_ID_FIELD_NUMBER: _ClassVar[int]
    ISV_FAMILY_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    MISC_SELECT_FIELD_NUMBER: _ClassVar[int]
    CPU_SVN_FIELD_NUMBER: _ClassVar[int]
    MODE64_FIELD_NUMBER: _ClassVar[int]
    PROVISION_KEY_FIELD_NUMBER: _ClassVar[int]
    EINITTOKEN_KEY_FIELD_NUMBER: _ClassVar[int]
    KSS_FIELD_NUMBER: _ClassVar[int]
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    config_id: bytes
    config_svn: int
    isv_ext_prod_id: bytes
    isv_family_id: bytes
    attributes: bytes
    misc_select: int
    cpu_svn: bytes
    mode64: bool
    provision_key: bool
    einittoken_key: bool
    kss: bool
    def __init__(self, mr_enclave: _Optional[bytes] = ..., mr_signer: _Optional[bytes] = ..., isv_prod_id: _Optional[int] = ..., isv_svn: _Optional[int] = ..., config_id: _Optional[bytes] = ..., config_svn: _Optional[int] = ..., isv_ext_prod_id: _Optional[bytes] = ..., isv_family_id: _Optional[bytes] = ..., attributes: _Optional[bytes] = ..., misc_select: _Optional[int] = ..., cpu_svn: _Optional[bytes] = ..., mode64: _Optional[bool] = ..., provision_key: _Optional[bool] = ..., einittoken_key: _Optional[bool] = ..., kss: _Optional[bool] = ...) -> None: ...

class TdxIdentity(_message.Message):
    __slots__ = ("tee_tcb_svn", "mr_seam", "mr_signer_seam", "seam_attributes", "td_attributes", "xfam", "mr_td", "mr_config_id", "mr_owner", "mr_owner_config", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "tee_tcb_svn2", "mr_servicetd")
    TEE_TCB_SVN_FIELD_NUMBER: _ClassVar[int]
    MR_SEAM_FIELD_NUMBER: _ClassVar[int]
    MR_SIGNER_SEAM_FIELD_NUMBER: _ClassVar[int]
    SEAM_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TD_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    XFAM_FIELD_NUMBER: _ClassVar[int]
    MR_TD_FIELD_NUMBER: _ClassVar[int]
    MR_CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    MR_OWNER_FIELD_NUMBER: _ClassVar[int]
    MR_OWNER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    RTMR0_FIELD_NUMBER: _ClassVar[int]
    RTMR1_FIELD_NUMBER: _ClassVar[int]
    RTMR2_FIELD_NUMBER: _ClassVar[int]
    RTMR3_FIELD_NUMBER: _ClassVar[int]
    TEE_TCB_SVN2_FIELD_NUMBER: _ClassVar[int]
    MR_SERVICETD_FIELD_NUMBER: _ClassVar[int]
    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmr0: bytes
    rtmr1: bytes
    rtmr2: bytes
    rtmr3: bytes
    tee_tcb_svn2: bytes
    mr_servicetd: bytes
    def __init__(self, tee_tcb_svn: _Optional[bytes] = ..., mr_seam: _Optional[bytes] = ..., mr_signer_seam: _Optional[bytes] = ..., seam_attributes: _Optional[bytes] = ..., td_attributes: _Optional[bytes] = ..., xfam: _Optional[bytes] = ..., mr_td: _Optional[bytes] = ..., mr_config_id: _Optional[bytes] = ..., mr_owner: _Optional[bytes] = ..., mr_owner_config: _Optional[bytes] = ..., rtmr0: _Optional[bytes] = ..., rtmr1: _Optional[bytes] = ..., rtmr2: _Optional[bytes] = ..., rtmr3: _Optional[bytes] = ..., tee_tcb_svn2: _Optional[bytes] = ..., mr_servicetd: _Optional[bytes] = ...) -> None: ...
