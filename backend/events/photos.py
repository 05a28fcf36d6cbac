"""Photos of events: checked by decoding, stored once by SHA-256, served without location to outsiders."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from backend.auth.service import Actor, Forbidden
from backend.errors import DomainError, NotFound, ValidationFailed, field_error
from backend.events.models import Attachment, Event
from backend.events.service import get_event

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
GPS_IFD = 0x8825
# A PNG's last 12 bytes are its IEND chunk: zero length, the type, its (constant) checksum.
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported Media Type"
    slug = "unsupported-media-type"


@dataclass(frozen=True)
class Checked:
    sha256: str
    media_type: str
    width: int
    height: int


def check_image(data: bytes) -> Checked:
    """Decode the whole image: only real, complete JPEG, PNG or WebP files pass.

    Not an image, or another format: 415. A JPEG, PNG or WebP that is cut short or corrupt: 422.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnsupportedMediaType(
            "The file is not a JPEG, PNG or WebP image.",
            errors=[field_error("file", str(error)[:200], location="files")],
        ) from error
    if kind not in FORMATS:
        raise UnsupportedMediaType(f"{kind or 'This'} is not a JPEG, PNG or WebP image.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # the structure and checksums, which decoding alone does not read
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every pixel: a file cut in its image data fails here
            width, height = image.size
        if kind == "PNG" and not data.endswith(PNG_END):
            raise SyntaxError("the PNG does not end with its IEND chunk")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValidationFailed(
            f"The file is not a complete {kind} image.",
            errors=[field_error("file", str(error)[:200] or "Incomplete image.", location="files")],
        ) from error
    return Checked(hashlib.sha256(data).hexdigest(), FORMATS[kind], width, height)


def media_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / sha256[:2] / sha256[2:4] / sha256


def _store(media_dir: Path, sha256: str, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename, so no reader sees half a file."""
    path = media_path(media_dir, sha256)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_photo(
    session: Session,
    event_id: uuid.UUID,
    data: bytes,
    *,
    actor: Actor,
    media_dir: Path,
    filename: str | None,
    stage: str,
    max_bytes: int,
    max_photos: int,
) -> tuple[Attachment, bool]:
    """Attach a photo; the same photo again is the same attachment (created False)."""
    event = get_event(session, event_id, actor)
    if actor.read_only:
        raise Forbidden("API keys are read-only.")
    if len(data) > max_bytes:
        raise ValidationFailed(
            f"Photos are at most {max_bytes} bytes.",
            errors=[field_error("file", "Too large.", location="files")],
        )
    checked = check_image(data)
    existing = session.scalars(
        select(Attachment).where(Attachment.event_id == event.id, Attachment.sha256 == checked.sha256)
    ).first()
    if existing is not None:
        return existing, False
    # Lock the event row so two uploads cannot both pass the count check.
    session.execute(select(Event.id).where(Event.id == event.id).with_for_update())
    count = session.scalar(select(func.count()).where(Attachment.event_id == event.id)) or 0
    if count >= max_photos:
        raise ValidationFailed(
            f"An event has at most {max_photos} photos.",
            errors=[field_error("file", "Photo limit reached.", location="files")],
        )
    _store(media_dir, checked.sha256, data)
    row = session.scalars(
        insert(Attachment)
        .values(
            event_id=event.id,
            sha256=checked.sha256,
            media_type=checked.media_type,
            size=len(data),
            width=checked.width,
            height=checked.height,
            stage=stage,
            filename=(secure_filename(filename or "") or None),
            uploaded_by=actor.user_id,
        )
        .on_conflict_do_nothing(index_elements=["event_id", "sha256"])
        .returning(Attachment)
    ).first()
    if row is None:  # a concurrent retry stored it first
        row = session.scalars(
            select(Attachment).where(Attachment.event_id == event.id, Attachment.sha256 == checked.sha256)
        ).one()
        return row, False
    return row, True


def list_photos(session: Session, event_id: uuid.UUID, actor: Actor) -> tuple[Event, list[Attachment]]:
    event = get_event(session, event_id, actor)
    rows = session.scalars(select(Attachment).where(Attachment.event_id == event.id).order_by(Attachment.id))
    return event, list(rows)


def open_photo(session: Session, sha256: str, actor: Actor, media_dir: Path) -> tuple[bytes, str, bool]:
    """The image bytes for someone who may see an event holding it (GIS keys: not of sensitive
    categories); location stripped unless they may see the event's personal data. Returns
    (bytes, media type, stripped)."""
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise NotFound("No such photo.")
    rows = session.execute(
        select(Attachment, Event)
        .join(Event, Event.id == Attachment.event_id)
        .where(Attachment.sha256 == sha256)
    ).all()
    visible = [(a, e) for a, e in rows if actor.covers(e) and (actor.sees_sensitive_text or not e.sensitive)]
    if not visible:
        raise NotFound("No such photo.")
    attachment = visible[0][0]
    data = media_path(media_dir, sha256).read_bytes()
    if any(actor.sees_personal(e) for _, e in visible):
        return data, attachment.media_type, False
    return strip_location(data), attachment.media_type, True


def strip_location(data: bytes) -> bytes:
    """Drop the GPS block from a photo's EXIF (and any XMP), keeping the picture."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        if GPS_IFD not in exif and "xmp" not in image.info:
            return data
        exif.pop(GPS_IFD, None)
        out = io.BytesIO()
        options = {"exif": exif.tobytes()} if exif else {}
        if image.format == "JPEG":
            options["quality"] = 95
        image.save(out, format=image.format, **options)
        return out.getvalue()
