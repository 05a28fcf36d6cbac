"""Photos of events: checked by decoding, stored once by SHA-256, served without location to outsiders."""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, SessionTransaction
from werkzeug.utils import secure_filename

from backend.auth.service import Actor, Forbidden
from backend.errors import DomainError, NotFound, ServiceUnavailable, ValidationFailed, field_error
from backend.events.models import FILENAME_LENGTH, Attachment, Event
from backend.events.service import get_event

log = logging.getLogger(__name__)

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
GPS_IFD = 0x8825
# A PNG's last 12 bytes are its IEND chunk: zero length, the type, its (constant) checksum.
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported Media Type"
    slug = "unsupported-media-type"


class Gone(DomainError):
    status = 410
    title = "Gone"
    slug = "gone"


class InsufficientStorage(DomainError):
    status = 507
    title = "Insufficient Storage"
    slug = "insufficient-storage"


class StorageUnavailable(ServiceUnavailable):
    """The photo store is read-only or forbidden: an operator's fix, so retry later."""

    headers = {"Retry-After": "60"}


def _storage_error(error: OSError, doing: str) -> DomainError | None:
    """What a failing media folder means to the client: full is 507, read-only or forbidden is
    503; None for any other failure (a 500)."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        log.error("media folder full while %s: %s", doing, error)
        return InsufficientStorage("The photo store is full; nothing was stored. Try again later.")
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        log.error("media folder not writable while %s: %s", doing, error)
        return StorageUnavailable("The photo store cannot be written now; nothing was stored.")
    return None


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


_STAGED = "staged_photos"


def _stage(session: Session, media_dir: Path, sha256: str, data: bytes) -> None:
    """Write the photo beside its place now, and move it there when the session commits (a rename,
    so no reader sees half a file); when the transaction ends otherwise, drop it. A file is
    thus in place only for a committed row, and a refused or failed upload leaves nothing."""
    path = media_path(media_dir, sha256)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as error:
        mapped = _storage_error(error, "writing a photo")
        if mapped is None:
            raise
        raise mapped from error
    session.info.setdefault(_STAGED, []).append((Path(tmp), path))
    if not sa_event.contains(session, "after_commit", _publish):
        sa_event.listen(session, "after_commit", _publish)
        sa_event.listen(session, "after_transaction_end", _discard)


def _publish(session: Session) -> None:
    staged = session.info.pop(_STAGED, [])
    for index, (tmp, path) in enumerate(staged):
        try:
            os.replace(tmp, path)
        except OSError as error:
            for left, _ in staged[index:]:
                left.unlink(missing_ok=True)
            # The row is committed; the same upload again puts its file in place.
            mapped = _storage_error(error, "publishing a photo")
            if mapped is None:
                raise
            raise mapped from error


def _discard(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        for tmp, _ in session.info.pop(_STAGED, []):
            tmp.unlink(missing_ok=True)


def stored_filename(filename: str | None) -> str | None:
    """The client's file name as stored: path parts dropped, ASCII, and cut to the column's
    length keeping its extension."""
    name = secure_filename(filename or "")
    if len(name) > FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 10:
            name = f"{stem[: FILENAME_LENGTH - len(extension) - 1]}.{extension}"
        else:
            name = name[:FILENAME_LENGTH]
    return name or None


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
        if not media_path(media_dir, checked.sha256).exists():
            # Its row was committed but the file never reached its place (or was lost): resending
            # the photo puts it back.
            _stage(session, media_dir, checked.sha256, data)
        return existing, False
    # Lock the event row so two uploads cannot both pass the count check.
    session.execute(
        select(Event.id).where(Event.id == event.id, Event.received_at == event.received_at).with_for_update()
    )
    count = session.scalar(select(func.count()).where(Attachment.event_id == event.id)) or 0
    if count >= max_photos:
        raise ValidationFailed(
            f"An event has at most {max_photos} photos.",
            errors=[field_error("file", "Photo limit reached.", location="files")],
        )
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
            filename=stored_filename(filename),
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
    if not media_path(media_dir, checked.sha256).exists():  # another event may hold the same photo
        _stage(session, media_dir, checked.sha256, data)
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
    data = read_file(media_dir, sha256)
    if any(actor.sees_personal(e) for _, e in visible):
        return data, attachment.media_type, False
    return strip_location(data), attachment.media_type, True


def store_file(session: Session, media_dir: Path, sha256: str, data: bytes) -> None:
    """Put a file (a photo, a mediation agreement) in the store by its SHA-256 once the session
    commits, unless it is there already."""
    if not media_path(media_dir, sha256).exists():
        _stage(session, media_dir, sha256, data)


def read_file(media_dir: Path, sha256: str) -> bytes:
    """A stored file's bytes: 410 when its rows outlived it, 503 when the store is unreadable."""
    try:
        return media_path(media_dir, sha256).read_bytes()
    except FileNotFoundError:
        log.error("file %s has rows but no file under %s", sha256, media_dir)
        raise Gone("The file is missing; uploading it again restores it.") from None
    except OSError as error:
        log.error("file %s cannot be read: %s", sha256, error)
        raise StorageUnavailable("The file store cannot be read now.") from error


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
